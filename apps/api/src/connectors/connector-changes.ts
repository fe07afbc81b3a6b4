import { Injectable } from '@nestjs/common';

/**
 * Tells this process's listeners (the MCP gateway's open sessions) that an admin changed an org's
 * connectors — settings, a tool's mapping, approval or hold, a discovery, a removal, the allowed hosts — once the
 * change is committed. Other API processes see it within a second (the gateway reads the
 * connectors' configuration prints at most that old).
 */
@Injectable()
export class ConnectorChanges {
  private readonly listeners = new Set<(orgId: string) => void>();

  onChange(listener: (orgId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(orgId: string): void {
    for (const l of this.listeners) l(orgId);
  }

  /** Runs a change (committed when it resolves), then tells the listeners, also when it failed part way. */
  async after<T>(orgId: string, change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } finally {
      this.changed(orgId);
    }
  }
}
