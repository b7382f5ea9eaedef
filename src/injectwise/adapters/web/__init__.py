"""The clinic web app (server-rendered pages under /app/) over the same engine, reader and storage."""
