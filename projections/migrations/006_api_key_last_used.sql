-- When an API key last authenticated a request (from apikey.used, to the hour).
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
