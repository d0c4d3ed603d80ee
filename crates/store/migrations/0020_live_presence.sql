-- A call session started with a member present keeps the passkey assertion that started it
-- (its level-4 signature) and who made it, as message codes do.
ALTER TABLE live_sessions ADD COLUMN member_id TEXT;
ALTER TABLE live_sessions ADD COLUMN passkey_id TEXT;
ALTER TABLE live_sessions ADD COLUMN assertion TEXT;
