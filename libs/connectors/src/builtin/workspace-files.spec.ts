import { createHash } from 'node:crypto';
import { promises as fsp, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConnectorError } from '../errors';
import { ConnectorHub } from '../hub';
import { extractContext, parseManifest, resolveTool, reversibleCall, undoCall } from '../manifest';
import { createWorkspaceFilesServer, workspaceFilesManifest } from './workspace-files';

const HOSTILE: string[] = [
  '../secret.txt',
  '../../etc/passwd',
  'a/../../secret.txt',
  'sub/../../secret.txt',
  '..',
  '.',
  '/etc/passwd',
  '//etc/passwd',
  '/',
  '..\\secret.txt',
  'sub\\..\\..\\secret.txt',
  'C:\\Windows\\win.ini',
  'C:/Windows/win.ini',
  'c:secret.txt',
  '\\\\server\\share\\x',
  'doc.txt\u0000.png',
  '\u0000',
  'doc.txt:stream',
  'file:///etc/passwd',
  '~/secret.txt',
  '%2e%2e/secret.txt',
  '%2e%2e%2fsecret.txt',
  '..%2fsecret.txt',
  '\uFF0E\uFF0E/secret.txt', // fullwidth dots
  '..\uFF0Fsecret.txt', // fullwidth slash
  '\uFF0E\uFF0E\uFF0Fsecret.txt',
  '\u2025/secret.txt', // two dot leader, NFKC → ".."
  '\u2024\u2024/secret.txt', // one dot leader ×2
  '..\u2215secret.txt', // division slash
  '..\u2044secret.txt', // fraction slash
  'a/\u202Etxt.exe', // right-to-left override
  '\u200B../secret.txt', // zero-width space
  '..\u200D/secret.txt', // zero-width joiner
  'doc\u{E0041}.txt', // tag character
  'link-out/secret.txt', // symlinked parent pointing outside
  'link-out',
  'link-file.txt', // symlink to a file outside
  'sub/up/secret.txt', // symlink to ".." inside a subfolder
  'sub/up/outside/secret.txt',
  'loop/x', // symlink loop
  '.steward/trash/x', // the state folder
  '.STEWARD/undo',
  'a//b',
  'a/./b',
  'doc.txt/',
  ' ../secret.txt',
  'trailing-dot.',
  'x'.repeat(2000),
  'line\nbreak',
  '\u0130../x'.normalize('NFD'),
];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function snapshot(dir: string, skip: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (p === skip) continue;
      if (e.isSymbolicLink()) out[p] = `link:${await fsp.readlink(p)}`;
      else if (e.isDirectory()) {
        out[p] = 'dir';
        await walk(p);
      } else out[p] = sha(await fsp.readFile(p));
    }
  };
  await walk(dir);
  return out;
}

describe('workspace files connector', () => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'steward-ws-'));
  const folder = path.join(base, 'orgs', 'o1', 'users', 'u1');
  const hub = new ConnectorHub({ timeoutMs: 5000 });
  let before: Record<string, string>;

  beforeAll(async () => {
    await fsp.mkdir(path.join(base, 'outside'), { recursive: true });
    await fsp.mkdir(path.join(folder, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(base, 'secret.txt'), 'SENTINEL-PARENT');
    await fsp.writeFile(path.join(base, 'orgs', 'o1', 'users', 'secret.txt'), 'SENTINEL-USERS');
    await fsp.writeFile(path.join(base, 'outside', 'secret.txt'), 'SENTINEL-OUTSIDE');
    await fsp.mkdir(path.join(folder, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(folder, 'doc.txt'), 'hello');
    await fsp.symlink(path.join(base, 'outside'), path.join(folder, 'link-out'));
    await fsp.symlink(path.join(base, 'outside', 'secret.txt'), path.join(folder, 'link-file.txt'));
    await fsp.symlink('../..', path.join(folder, 'sub', 'up'));
    await fsp.symlink('loop', path.join(folder, 'loop'));
    await hub.addBuiltin('files', createWorkspaceFilesServer({ folder }));
    // Everything outside the folder, and the folder's own entries, before the attack.
    before = await snapshot(base, folder);
  });
  afterAll(async () => {
    await hub.close();
    await fsp.rm(base, { recursive: true, force: true });
  });

  it('has a valid manifest mapping its tools', () => {
    expect(() => parseManifest(workspaceFilesManifest)).not.toThrow();
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
  });

  it.each(HOSTILE.map((p) => [JSON.stringify(p).slice(0, 60), p]))('refuses %s for every tool', async (_label, hostile) => {
    const attempts: [string, Record<string, unknown>][] = [
      ['files.read', { path: hostile }],
      ['files.list', { path: hostile }],
      ['files.write', { path: hostile, content: 'PWNED' }],
      ['files.overwrite', { path: hostile, content: 'PWNED' }],
      ['files.delete', { path: hostile }],
      ['files.rename', { from: 'doc.txt', to: hostile }],
      ['files.rename', { from: hostile, to: 'moved.txt' }],
    ];
    for (const [tool, args] of attempts) {
      const err = await hub.callTool('files', tool, args).then(
        (r) => r,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConnectorError);
      expect({ tool, code: (err as ConnectorError).code }).toEqual({ tool, code: 'bad_arguments' });
    }
  });

  it('read, wrote, renamed and deleted nothing outside the folder during the attack', async () => {
    expect(await snapshot(base, folder)).toEqual(before);
    expect((await fsp.readFile(path.join(base, 'outside', 'secret.txt'))).toString()).toBe('SENTINEL-OUTSIDE');
    expect((await fsp.readFile(path.join(folder, 'doc.txt'))).toString()).toBe('hello');
    expect(await fsp.readdir(folder)).toEqual(expect.not.arrayContaining(['moved.txt']));
  });

  it('an undo puts back the bytes an overwrite replaced, a binary file too, and an overwrite shorter than the file leaves nothing of it behind', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xfe, 0x80]);
    await fsp.writeFile(path.join(folder, 'chart.png'), png);
    const ow = await hub.callTool('files', 'files.overwrite', { path: 'chart.png', content: 'x' });
    expect(await fsp.readFile(path.join(folder, 'chart.png'), 'utf8')).toBe('x');
    await hub.callTool('files', 'files.undo', { undoId: ow.structuredContent!.undoId, path: 'chart.png' });
    expect((await fsp.readFile(path.join(folder, 'chart.png'))).equals(png)).toBe(true);
    await fsp.unlink(path.join(folder, 'chart.png'));
  });

  it('lists, reads, writes new, overwrites with undo, renames', async () => {
    const list = await hub.callTool('files', 'files.list', {});
    expect((list.structuredContent!.entries as { name: string }[]).map((e) => e.name)).toEqual(['doc.txt', 'link-file.txt', 'link-out', 'loop', 'sub']);
    expect((await hub.callTool('files', 'files.read', { path: 'doc.txt' })).structuredContent).toMatchObject({ content: 'hello' });

    await hub.callTool('files', 'files.write', { path: 'notes/new.md', content: '# new' });
    expect(await fsp.readFile(path.join(folder, 'notes', 'new.md'), 'utf8')).toBe('# new');
    expect((await hub.callTool('files', 'files.write', { path: 'notes/new.md', content: 'again' }).catch((e: ConnectorError) => e)).code).toBe('conflict');

    const ow = await hub.callTool('files', 'files.overwrite', { path: 'notes/new.md', content: '# changed' });
    expect(await fsp.readFile(path.join(folder, 'notes', 'new.md'), 'utf8')).toBe('# changed');
    const mapping = resolveTool(workspaceFilesManifest, 'files.overwrite');
    const undo = undoCall(mapping, { path: 'notes/new.md', content: '# changed' }, ow.structuredContent)!;
    expect(undo).toEqual({ tool: 'files.undo', args: { undoId: ow.structuredContent!.undoId, path: 'notes/new.md' } });
    // The path it writes to is named, a fact the policy decides on; one the record does not write to is refused.
    expect(extractContext(resolveTool(workspaceFilesManifest, 'files.undo'), undo.args).resources).toEqual(['notes/new.md']);
    const elsewhere = await hub.callTool('files', 'files.undo', { undoId: ow.structuredContent!.undoId, path: 'public/new.md' }).catch((e: ConnectorError) => e);
    expect(elsewhere).toMatchObject({ code: 'bad_arguments', message: expect.stringContaining('puts back "notes/new.md"') });
    expect(await fsp.readFile(path.join(folder, 'notes', 'new.md'), 'utf8')).toBe('# changed');
    await hub.callTool('files', undo.tool, undo.args);
    expect(await fsp.readFile(path.join(folder, 'notes', 'new.md'), 'utf8')).toBe('# new');

    await hub.callTool('files', 'files.rename', { from: 'notes/new.md', to: 'notes/renamed.md' });
    expect(await fsp.readFile(path.join(folder, 'notes', 'renamed.md'), 'utf8')).toBe('# new');
    expect(extractContext(resolveTool(workspaceFilesManifest, 'files.rename'), { from: 'a', to: 'b' })).toEqual({ connector: 'workspace-files', resources: ['a', 'b'] });
    // A folder is not moved whole (the policy would see its name, not the paths of the files in it).
    const moved = await hub.callTool('files', 'files.rename', { from: 'notes', to: 'scratch/notes' }).catch((e: ConnectorError) => e);
    expect(moved).toMatchObject({ code: 'bad_arguments', message: expect.stringMatching(/not a file/) });
    expect(await fsp.readFile(path.join(folder, 'notes', 'renamed.md'), 'utf8')).toBe('# new');
  });

  it('deletes to a trash and restores', async () => {
    await fsp.writeFile(path.join(folder, 'gone.txt'), 'keep me');
    const mapping = resolveTool(workspaceFilesManifest, 'files.delete');
    const call = reversibleCall(mapping, { path: 'gone.txt' })!;
    const del = await hub.callTool('files', call.tool, call.args);
    await expect(fsp.stat(path.join(folder, 'gone.txt'))).rejects.toThrow();
    expect((await hub.callTool('files', 'files.read', { path: 'gone.txt' }).catch((e: ConnectorError) => e)).code).toBe('not_found');
    const undo = undoCall(mapping, call.args, del.structuredContent)!;
    expect(undo).toEqual({ tool: 'files.restore', args: { trashId: del.structuredContent!.trashId, path: 'gone.txt' } });
    expect(extractContext(resolveTool(workspaceFilesManifest, 'files.restore'), undo.args).resources).toEqual(['gone.txt']);
    const elsewhere = await hub.callTool('files', 'files.restore', { ...undo.args, path: 'other.txt' }).catch((e: ConnectorError) => e);
    expect(elsewhere).toMatchObject({ code: 'bad_arguments', message: expect.stringContaining('goes back to "gone.txt"') });
    await hub.callTool('files', undo.tool, undo.args);
    expect(await fsp.readFile(path.join(folder, 'gone.txt'), 'utf8')).toBe('keep me');
  });
});
