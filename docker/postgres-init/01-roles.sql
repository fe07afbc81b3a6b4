-- Steward database roles, run once by the postgres image on an empty data directory
-- (/docker-entrypoint-initdb.d, as the superuser, with psql 15+ for \getenv).
--
--   steward_owner   owns database "steward" and its schema; runs the migrations
--                   (DATABASE_OWNER_URL). Not a superuser, cannot bypass RLS.
--   steward_app     the runtime role of api and worker (DATABASE_URL): LOGIN, NOSUPERUSER,
--                   NOBYPASSRLS; the migrations grant it exactly the privileges it needs.
--   steward_lookup  NOLOGIN owner of the narrow SECURITY DEFINER lookup functions that the
--                   migrations create; created here (and granted to steward_owner) so the
--                   owner needs no CREATEROLE.
--
-- Passwords come from the environment of the postgres container, never from this file:
--   STEWARD_DB_OWNER_PASSWORD, STEWARD_DB_APP_PASSWORD

\set ON_ERROR_STOP on
\getenv owner_password STEWARD_DB_OWNER_PASSWORD
\getenv app_password STEWARD_DB_APP_PASSWORD

\if :{?owner_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'STEWARD_DB_OWNER_PASSWORD is not set for the postgres container'; END $$;
\endif
\if :{?app_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'STEWARD_DB_APP_PASSWORD is not set for the postgres container'; END $$;
\endif

SELECT 'CREATE ROLE steward_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_owner') \gexec
SELECT 'CREATE ROLE steward_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_app') \gexec
SELECT 'CREATE ROLE steward_lookup NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'steward_lookup') \gexec

-- Enforce the attributes even if a role existed already; set the passwords (quoted by psql).
ALTER ROLE steward_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'owner_password';
ALTER ROLE steward_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION PASSWORD :'app_password';
ALTER ROLE steward_lookup NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION;
GRANT steward_lookup TO steward_owner;

SELECT 'CREATE DATABASE steward OWNER steward_owner'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'steward') \gexec

REVOKE ALL ON DATABASE steward FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE steward TO steward_app;

\connect steward
-- PostgreSQL 15: schema public belongs to pg_database_owner (= steward_owner) and PUBLIC has no
-- CREATE on it; say so explicitly in case the image's template differs.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO steward_owner;
