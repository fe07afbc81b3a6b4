/**
 * Which connector listed each resource URI of a gateway session. The first connector to list a URI
 * keeps it: another upstream listing the same URI later cannot take its reads over. At most `max`
 * distinct URIs are remembered, so that a session's memory stays bounded whatever its upstreams
 * list; past that, new URIs are left out of the session's lists (a URI nobody listed is read only
 * through a resource template that matches it).
 */
export class ResourceOwners {
  private readonly owners = new Map<string, string>();

  constructor(private readonly max = 20_000) {}

  /** The connector that listed this URI first, if any did. */
  get(uri: string): string | undefined {
    return this.owners.get(uri);
  }

  /** The resources of one connector's list that its session shows: those it listed first, and new ones while there is room. */
  claim<R extends { uri: string }>(connector: string, listed: R[]): R[] {
    const shown: R[] = [];
    for (const r of listed) {
      const owner = this.owners.get(r.uri);
      if (owner !== undefined && owner !== connector) continue;
      if (owner === undefined) {
        if (this.owners.size >= this.max) continue;
        this.owners.set(r.uri, connector);
      }
      shown.push(r);
    }
    return shown;
  }

  get size(): number {
    return this.owners.size;
  }
}
