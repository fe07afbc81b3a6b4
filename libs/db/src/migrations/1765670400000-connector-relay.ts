import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-connector opt-in for the MCP gateway to relay an upstream's sampling requests (the upstream
 * asks the user's model to write text) and elicitation requests (it asks the user for input) to
 * the gateway's client. Both off by default: an upstream asking the user's model to write text is
 * a way in for injected content, so an admin allows it for a connector explicitly.
 */
export class ConnectorRelay1765670400000 implements MigrationInterface {
  name = 'ConnectorRelay1765670400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE connectors ADD COLUMN relay_sampling boolean NOT NULL DEFAULT false, ADD COLUMN relay_elicitation boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE connectors DROP COLUMN relay_elicitation, DROP COLUMN relay_sampling`);
  }
}
