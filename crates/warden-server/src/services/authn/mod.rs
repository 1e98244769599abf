//! How an account gains or regains a credential without an administrator learning it: one
//! module per flow, each built on the store's one-time tokens (hashed, expiring, consumed
//! atomically by the write that uses them), and the factors that prove who signs in beyond a
//! password (second factors, passkeys). Password sign-in itself still lives in `services::auth`.

pub mod email_verification;
pub mod invitation;
pub mod passkey;
pub mod password_mail;
pub mod recovery_link;
pub mod registration;
pub mod second_factor;
