-- What an operator needs to judge a session: where it signed in from (the client address and
-- User-Agent at creation, the latter cut to 256 characters) and how it was authenticated
-- (`password`, `password+totp`, `password+backup_code`, `passkey`, `password+passkey`).
-- Sessions from before this migration were all password sign-ins.
ALTER TABLE sessions ADD COLUMN client TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN auth_strength TEXT NOT NULL DEFAULT 'password';
