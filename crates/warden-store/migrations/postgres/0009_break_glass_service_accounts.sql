-- The break-glass accounts `admin` and `idm_admin` become service accounts, as in Kanidm:
-- they stand for no person and carry no personal data. Their ids stay (memberships, bindings,
-- sessions and the audit log keep pointing at them); their display name becomes the
-- description and the profile is emptied.
UPDATE accounts
SET kind = 'service_account',
    description = COALESCE(description, (profile::jsonb) ->> 'display_name'),
    profile = '{}'
WHERE id IN ('00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-000000000002')
  AND kind = 'user';
