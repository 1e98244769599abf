use super::*;

fn reason(result: Result<(), CoreError>) -> String {
    match result {
        Err(CoreError::Validation { field, reason }) => format!("{field}: {reason}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

const STRONG: &str = "violet tractor spoon gallery";

#[test]
fn a_strong_password_passes_and_the_field_is_the_callers() {
    let policy = PasswordPolicy::default();
    policy.check("password", STRONG, Owner::default()).unwrap();
    assert!(reason(policy.check("new", "short", Owner::default())).starts_with("new: "));
}

#[test]
fn length_is_counted_in_characters_with_a_byte_ceiling() {
    let policy = PasswordPolicy::new(12, 0, std::iter::empty()).unwrap();
    assert_eq!(reason(policy.check("password", "zq8#Kv!2mW4", Owner::default())), "password: is too short: at least 12 characters");
    policy.check("password", "zq8#Kv!2mW4p", Owner::default()).unwrap();
    // Twelve characters of two bytes each: long enough, whatever the byte count.
    policy.check("password", "ééééééééééé7", Owner::default()).unwrap();
    let at_ceiling = "x7Q!".repeat(MAX_LENGTH_BYTES / 4);
    policy.check("password", &at_ceiling, Owner::default()).unwrap();
    let over = format!("{at_ceiling}y");
    assert_eq!(reason(policy.check("password", &over, Owner::default())), "password: is too long: at most 1024 bytes");
}

#[test]
fn the_configured_minimum_applies_and_has_a_floor() {
    let policy = PasswordPolicy::new(20, 0, std::iter::empty()).unwrap();
    assert!(reason(policy.check("password", "nineteen chars ok!!", Owner::default())).contains("at least 20 characters"));
    policy.check("password", "twenty chars is ok!!", Owner::default()).unwrap();
    assert!(PasswordPolicy::new(7, 3, std::iter::empty()).is_err());
    assert!(PasswordPolicy::new(1025, 3, std::iter::empty()).is_err());
    assert!(PasswordPolicy::new(12, 5, std::iter::empty()).is_err());
}

#[test]
fn weak_passwords_are_refused_with_zxcvbn_advice() {
    let policy = PasswordPolicy::default();
    for weak in ["aaaaaaaaaaaaaaaa", "abcdefghijklmnop", "qwertyuiopasdf", "1234567890123"] {
        let why = reason(policy.check("password", weak, Owner::default()));
        assert!(why.starts_with("password: is too easy to guess ("), "{weak}: {why}");
    }
    // Score 0 turns the estimate off; the other rules stay.
    let lenient = PasswordPolicy::new(12, 0, std::iter::empty()).unwrap();
    lenient.check("password", "aaaaaaaaaaaaaaaa", Owner::default()).unwrap();
}

#[test]
fn only_the_leading_characters_are_scored() {
    let policy = PasswordPolicy::default();
    // A weak start followed by a strong tail past the cap is still weak.
    let padded = format!("{}{STRONG}", "a".repeat(SCORED_CHARS));
    assert!(reason(policy.check("password", &padded, Owner::default())).contains("too easy to guess"));
    // A very long strong password is checked quickly (uncapped, this would take very long).
    let long = "Vk3#pLq9!zR".repeat(93);
    policy.check("password", &long, Owner::default()).unwrap();
}

#[test]
fn the_account_name_and_email_local_parts_are_refused_case_insensitively() {
    let policy = PasswordPolicy::default();
    let emails = ["Marguerite.Duras@example.org", "mdx@example.net"];
    let owner = Owner { name: "zephyrine", emails: &emails };
    let expected = "password: contains your account name or e-mail address: choose one without them";
    assert_eq!(reason(policy.check("password", "violet ZEPHYRINE tractor", owner)), expected);
    assert_eq!(reason(policy.check("password", "violet marguerite.duras spoon", owner)), expected);
    assert_eq!(reason(policy.check("password", "gallery MDX tractor spoon", owner)), expected);
    // The domain is not personal.
    policy.check("password", "violet example.org tractor spoon", owner).unwrap();
    // Parts under three characters are not looked for.
    let short = Owner { name: "jo", emails: &["al@example.org"] };
    policy.check("password", "jo al violet tractor spoon", short).unwrap();
}

#[test]
fn the_shipped_list_holds_real_common_passwords() {
    let policy = PasswordPolicy::new(8, 0, std::iter::empty()).unwrap();
    for common in ["password123", "qwerty123456", "1qaz2wsx3edc", "PASSWORD123", "iloveyou"] {
        assert!(policy.is_listed(common), "{common}");
    }
    assert_eq!(
        reason(policy.check("password", "qwerty123456", Owner::default())),
        "password: is on the list of common passwords: choose another"
    );
    assert!(!policy.is_listed(STRONG));
    // The header comment is not an entry.
    assert!(!policy.denied.iter().any(|e| e.starts_with('#')));
    assert!(policy.denied.len() > 10_000);
}

#[test]
fn operators_add_their_own_entries() {
    let extra = ["# our own", "", "  Violet Tractor Spoon Gallery  "].map(String::from);
    let policy = PasswordPolicy::new(12, 3, extra).unwrap();
    assert_eq!(reason(policy.check("password", STRONG, Owner::default())), "password: is on the list of common passwords: choose another");
    assert!(!policy.is_listed("# our own"));
}
