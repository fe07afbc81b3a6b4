import { randomUUID } from 'node:crypto';
import { constants as C, promises as fsp, readlinkSync } from 'node:fs';
import path from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { badArguments, ConnectorError } from '../errors';
import type { ConnectorManifest } from '../manifest';
import { defineTool } from '../tool-result';

/**
 * Workspace files: one folder per org or user. Every path is relative to that folder and is
 * refused when it could name anything outside it: "..", absolute paths, NUL and control
 * characters, backslashes, drive letters and ":" (alternate streams), percent-encoding,
 * anything that Unicode NFKC normalisation would change (fullwidth dots and slashes, "‥"),
 * look-alike slashes, invisible and bidirectional control characters, and symlinks anywhere on
 * the path (checked with lstat on every component, opened with O_NOFOLLOW, and the opened file's
 * real path re-checked through /proc/self/fd where the platform has it, which closes the race of
 * a parent being swapped for a symlink between the check and the open).
 *
 * Overwrites keep an undo copy; deletes move to a trash and can be restored. Both live in
 * `<folder>/.steward/`, which no tool path may name.
 */

export interface WorkspaceFilesOptions {
  /** The org's or user's folder (created if missing). */
  folder: string;
  /** Largest file read or written, bytes (default 5 MiB). */
  maxFileBytes?: number;
}

const STATE = '.steward';
const MAX_PATH = 1024;
const MAX_SEGMENT = 255;
// Look-alike slashes and dots that NFKC leaves alone.
const CONFUSABLES = /[\u2215\u2044\u29F8\u29F5\u29F9\u2216\uFE68\u2024\u2025\u2026\u00B7\u0589\u05C3\u3002\uFF61\u02D9]/u;
// eslint-disable-next-line no-control-regex -- control characters are refused
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
const FORMAT = /[\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;

/** Checks a relative path's text; returns its segments or throws bad_arguments. */
export function checkRelativePath(input: unknown, opts: { allowEmpty?: boolean } = {}): string[] {
  if (typeof input !== 'string') throw badArguments('path must be a string');
  const p = input;
  const refuse = (why: string) => badArguments(`path refused (${why}): ${JSON.stringify(p.slice(0, 200))}`, { path: p.slice(0, 200) });
  if (p === '') {
    if (opts.allowEmpty) return [];
    throw refuse('empty');
  }
  if (p.length > MAX_PATH) throw refuse('too long');
  if (p.includes('\0')) throw refuse('NUL byte');
  if (CONTROL.test(p)) throw refuse('control character');
  if (FORMAT.test(p)) throw refuse('invisible or bidirectional control character');
  if (p.includes('\\')) throw refuse('backslash');
  if (p.includes(':')) throw refuse('":" (drive letter, URL or alternate stream)');
  if (p.startsWith('/')) throw refuse('absolute path');
  if (p.startsWith('~')) throw refuse('home directory');
  if (/%[0-9A-Fa-f]{2}/.test(p)) throw refuse('percent-encoding');
  if (p.normalize('NFKC') !== p || p.normalize('NFC') !== p) throw refuse('not in Unicode normal form (look-alike characters)');
  if (CONFUSABLES.test(p)) throw refuse('look-alike slash or dot');
  if (p.endsWith('/')) throw refuse('trailing slash');
  const segments = p.split('/');
  for (const s of segments) {
    if (s === '') throw refuse('empty segment');
    if (s === '.' || s === '..') throw refuse('"." or ".." segment');
    if (/^\.+$/.test(s)) throw refuse('dots-only segment');
    if (/[. ]$/.test(s) || /^ /.test(s)) throw refuse('segment starts with a space or ends with a dot or space');
    if (Buffer.byteLength(s) > MAX_SEGMENT) throw refuse('segment too long');
  }
  if (segments[0]?.toLowerCase() === STATE) throw refuse('reserved folder');
  return segments;
}

export class WorkspaceFolder {
  private realRoot?: string;
  constructor(readonly folder: string) {}

  async root(): Promise<string> {
    if (!this.realRoot) {
      await fsp.mkdir(this.folder, { recursive: true });
      this.realRoot = await fsp.realpath(this.folder);
      await fsp.mkdir(path.join(this.realRoot, STATE, 'trash'), { recursive: true });
      await fsp.mkdir(path.join(this.realRoot, STATE, 'undo'), { recursive: true });
    }
    return this.realRoot;
  }

  private inside(root: string, abs: string): boolean {
    return abs === root || abs.startsWith(root + path.sep);
  }

  /**
   * The absolute path of a relative one, after checking that no existing component is a symlink
   * and that the parent's real path is inside the folder.
   */
  async resolve(rel: unknown, opts: { allowEmpty?: boolean } = {}): Promise<string> {
    const segments = checkRelativePath(rel, opts);
    const root = await this.root();
    if (!segments.length) return root;
    let current = root;
    for (const seg of segments) {
      current = path.join(current, seg);
      const st = await fsp.lstat(current).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
      if (!st) break;
      if (st.isSymbolicLink()) throw badArguments(`path refused (symbolic link): ${JSON.stringify(rel)}`);
    }
    const abs = path.join(root, ...segments);
    if (!this.inside(root, abs)) throw badArguments(`path refused (outside the folder): ${JSON.stringify(rel)}`);
    const parent = await fsp.realpath(path.dirname(abs)).catch(() => null);
    if (parent && !this.inside(root, parent)) throw badArguments(`path refused (outside the folder): ${JSON.stringify(rel)}`);
    return abs;
  }

  /** After open: the file the descriptor really names must be inside the folder. */
  async checkOpened(fd: number, rel: string): Promise<void> {
    let real: string;
    try {
      real = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return; // no /proc: the lstat checks and O_NOFOLLOW stand alone
    }
    const root = await this.root();
    if (!this.inside(root, real)) throw badArguments(`path refused (resolved outside the folder): ${JSON.stringify(rel)}`);
  }

  async stateDir(kind: 'trash' | 'undo'): Promise<string> {
    return path.join(await this.root(), STATE, kind);
  }
}

function notFound(rel: string): ConnectorError {
  return new ConnectorError('not_found', `no such file: ${JSON.stringify(rel)}`, { path: rel });
}

async function readFileSafe(ws: WorkspaceFolder, rel: string, max: number): Promise<Buffer> {
  const abs = await ws.resolve(rel);
  const fh = await fsp.open(abs, C.O_RDONLY | C.O_NOFOLLOW).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw notFound(rel);
    if (e.code === 'ELOOP') throw badArguments(`path refused (symbolic link): ${JSON.stringify(rel)}`);
    throw e;
  });
  try {
    await ws.checkOpened(fh.fd, rel);
    const st = await fh.stat();
    if (!st.isFile()) throw badArguments(`not a file: ${JSON.stringify(rel)}`);
    if (st.size > max) throw new ConnectorError('result_too_large', `file is ${st.size} bytes, more than ${max}`, { path: rel });
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function writeFileSafe(ws: WorkspaceFolder, rel: string, content: string | Buffer, mode: 'new' | 'overwrite'): Promise<void> {
  const abs = await ws.resolve(rel);
  await fsp.mkdir(path.dirname(abs), { recursive: true });
  await ws.resolve(rel); // parents created: check again
  // Not truncated on open: only once the file opened is known to be inside the folder (a parent
  // swapped for a link meanwhile would otherwise have a file outside emptied before the check).
  const flags = C.O_WRONLY | C.O_NOFOLLOW | (mode === 'new' ? C.O_CREAT | C.O_EXCL : 0);
  const fh = await fsp.open(abs, flags, 0o640).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'EEXIST') throw new ConnectorError('conflict', `file exists: ${JSON.stringify(rel)} (use files.overwrite)`, { path: rel });
    if (e.code === 'ENOENT') throw notFound(rel);
    if (e.code === 'ELOOP') throw badArguments(`path refused (symbolic link): ${JSON.stringify(rel)}`);
    throw e;
  });
  try {
    try {
      await ws.checkOpened(fh.fd, rel);
    } catch (err) {
      // Created outside the folder through a swapped parent: the empty file this call made goes again.
      if (mode === 'new') await fsp.readlink(`/proc/self/fd/${fh.fd}`).then((real) => fsp.unlink(real)).catch(() => undefined);
      throw err;
    }
    if (mode === 'overwrite') await fh.truncate(0);
    await fh.writeFile(content);
  } finally {
    await fh.close();
  }
}

export function createWorkspaceFilesServer(opts: WorkspaceFilesOptions): McpServer {
  const ws = new WorkspaceFolder(opts.folder);
  const max = opts.maxFileBytes ?? 5 * 1024 * 1024;
  const server = new McpServer({ name: 'steward-workspace-files', version: '1.0.0' });
  const svc = 'workspace files';
  const p = z.string().max(MAX_PATH);
  const content = z.string().max(max);

  defineTool(server, svc, 'files.list', { description: 'List a folder of the workspace.', inputSchema: { path: p.optional() }, readOnly: true }, async (a) => {
    const abs = await ws.resolve(a.path ?? '', { allowEmpty: true });
    const root = await ws.root();
    const entries = await fsp.readdir(abs, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw notFound(a.path ?? '');
      if (e.code === 'ENOTDIR') throw badArguments(`not a folder: ${JSON.stringify(a.path)}`);
      throw e;
    });
    const items = entries
      .filter((e) => !(abs === root && e.name === STATE))
      .map((e) => ({ name: e.name, type: e.isDirectory() ? 'folder' : e.isSymbolicLink() ? 'link' : 'file' }))
      .sort((x, y) => x.name.localeCompare(y.name));
    return { data: { path: a.path ?? '', entries: items } };
  });

  defineTool(server, svc, 'files.read', { description: 'Read a text file of the workspace.', inputSchema: { path: p }, readOnly: true }, async (a) => {
    const buf = await readFileSafe(ws, a.path, max);
    return { data: { path: a.path, content: buf.toString('utf8'), bytes: buf.length } };
  });

  defineTool(server, svc, 'files.write', { description: 'Write a new file (refused if it exists).', inputSchema: { path: p, content } }, async (a) => {
    await writeFileSafe(ws, a.path, a.content, 'new');
    return { data: { path: a.path, created: true } };
  });

  defineTool(server, svc, 'files.overwrite', { description: 'Overwrite an existing file; an undo copy is kept.', inputSchema: { path: p, content } }, async (a) => {
    const before = await readFileSafe(ws, a.path, max);
    const undoId = randomUUID();
    await fsp.writeFile(path.join(await ws.stateDir('undo'), undoId), JSON.stringify({ path: a.path, content: before.toString('base64') }), { flag: 'wx' });
    await writeFileSafe(ws, a.path, a.content, 'overwrite');
    return { data: { path: a.path, undoId } };
  });

  defineTool(server, svc, 'files.undo', { description: UNDO, inputSchema: { undoId: z.uuid(), path: p } }, async (a) => {
    const file = path.join(await ws.stateDir('undo'), a.undoId);
    const saved = JSON.parse(await fsp.readFile(file, 'utf8').catch(() => Promise.reject(new ConnectorError('not_found', `no undo record ${a.undoId}`)))) as { path: string; content: string };
    // The policy decided on the path the call names: it must be the one the record writes to.
    if (saved.path !== a.path) throw badArguments(`undo record ${a.undoId} puts back ${JSON.stringify(saved.path)}, not ${JSON.stringify(a.path)}: nothing was written`);
    const abs = await ws.resolve(saved.path);
    const exists = await fsp.lstat(abs).then(() => true, () => false);
    // The bytes as they were (a spreadsheet or an image too, not only text).
    await writeFileSafe(ws, saved.path, Buffer.from(saved.content, 'base64'), exists ? 'overwrite' : 'new');
    await fsp.unlink(file);
    return { data: { path: saved.path, restored: true } };
  });

  defineTool(server, svc, 'files.rename', { description: 'Rename or move a file (not a folder) inside the workspace.', inputSchema: { from: p, to: p } }, async (a) => {
    const from = await ws.resolve(a.from);
    const to = await ws.resolve(a.to);
    const st = await fsp.lstat(from).catch(() => null);
    if (!st) throw notFound(a.from);
    if (st.isSymbolicLink()) throw badArguments(`path refused (symbolic link): ${JSON.stringify(a.from)}`);
    // One file: a folder moved whole would take every file in it past the rules for their paths (the policy sees only the two names).
    if (!st.isFile()) throw badArguments(`not a file (folders are not moved): ${JSON.stringify(a.from)}`);
    if (await fsp.lstat(to).then(() => true, () => false)) throw new ConnectorError('conflict', `target exists: ${JSON.stringify(a.to)}`);
    await fsp.mkdir(path.dirname(to), { recursive: true });
    await ws.resolve(a.to);
    await fsp.rename(from, to);
    return { data: { from: a.from, to: a.to } };
  });

  defineTool(server, svc, 'files.delete', { description: 'Move a file to the trash (restorable).', inputSchema: { path: p }, destructive: true }, async (a) => {
    const abs = await ws.resolve(a.path);
    const st = await fsp.lstat(abs).catch(() => null);
    if (!st) throw notFound(a.path);
    if (st.isSymbolicLink()) throw badArguments(`path refused (symbolic link): ${JSON.stringify(a.path)}`);
    if (!st.isFile()) throw badArguments(`not a file: ${JSON.stringify(a.path)}`);
    const trashId = randomUUID();
    const trash = await ws.stateDir('trash');
    await fsp.writeFile(path.join(trash, `${trashId}.json`), JSON.stringify({ path: a.path, deletedAt: new Date().toISOString() }), { flag: 'wx' });
    await fsp.rename(abs, path.join(trash, trashId));
    return { data: { path: a.path, trashId } };
  });

  defineTool(server, svc, 'files.restore', { description: RESTORE, inputSchema: { trashId: z.uuid(), path: p } }, async (a) => {
    const trash = await ws.stateDir('trash');
    const meta = JSON.parse(await fsp.readFile(path.join(trash, `${a.trashId}.json`), 'utf8').catch(() => Promise.reject(new ConnectorError('not_found', `nothing in the trash with id ${a.trashId}`)))) as { path: string };
    // The policy decided on the path the call names: it must be where the file goes back to.
    if (meta.path !== a.path) throw badArguments(`trash item ${a.trashId} goes back to ${JSON.stringify(meta.path)}, not ${JSON.stringify(a.path)}: nothing was restored`);
    const abs = await ws.resolve(meta.path);
    if (await fsp.lstat(abs).then(() => true, () => false)) throw new ConnectorError('conflict', `a file exists at ${JSON.stringify(meta.path)} again`);
    await fsp.mkdir(path.dirname(abs), { recursive: true });
    await ws.resolve(meta.path);
    await fsp.rename(path.join(trash, a.trashId), abs);
    await fsp.unlink(path.join(trash, `${a.trashId}.json`));
    return { data: { path: meta.path, restored: true } };
  });

  return server;
}

const pathSchema = { type: 'string', maxLength: MAX_PATH };
const UNDO = 'Put back the content an overwrite replaced: the undo id and the path it puts back (as the overwrite returned them).';
const RESTORE = 'Restore a file from the trash to where it was: the trash id and that path (as the delete returned them).';

export const workspaceFilesManifest: ConnectorManifest = {
  id: 'workspace-files',
  name: 'Workspace files',
  vendor: 'Steward',
  description: 'A folder per org or user on the Steward server.',
  runtime: { kind: 'builtin' },
  auth: { kind: 'none' },
  credentialScope: 'user',
  tools: [
    { name: 'files.list', description: 'List a folder of the workspace.', inputSchema: { type: 'object', properties: { path: pathSchema } }, action: 'file.read', extract: { resources: ['/path'] }, readOnly: true },
    { name: 'files.read', description: 'Read a text file of the workspace.', inputSchema: { type: 'object', properties: { path: pathSchema }, required: ['path'] }, action: 'file.read', extract: { resources: ['/path'] }, readOnly: true },
    {
      name: 'files.write',
      description: 'Write a new file (refused if it exists).',
      inputSchema: { type: 'object', properties: { path: pathSchema, content: { type: 'string' } }, required: ['path', 'content'] },
      action: 'file.create',
      extract: { resources: ['/path'] },
      reversible: { undo: { tool: 'files.delete', args: { path: '/args/path' } } },
    },
    {
      name: 'files.overwrite',
      description: 'Overwrite an existing file; an undo copy is kept.',
      inputSchema: { type: 'object', properties: { path: pathSchema, content: { type: 'string' } }, required: ['path', 'content'] },
      action: 'file.update',
      extract: { resources: ['/path'] },
      reversible: { undo: { tool: 'files.undo', args: { undoId: '/result/undoId', path: '/args/path' } } },
    },
    { name: 'files.undo', description: UNDO, inputSchema: { type: 'object', properties: { undoId: { type: 'string' }, path: pathSchema }, required: ['undoId', 'path'] }, action: 'file.update', extract: { resources: ['/path'] } },
    {
      name: 'files.rename',
      description: 'Rename or move a file inside the workspace.',
      inputSchema: { type: 'object', properties: { from: pathSchema, to: pathSchema }, required: ['from', 'to'] },
      action: 'file.update',
      extract: { resources: ['/from', '/to'] },
      reversible: { undo: { tool: 'files.rename', args: { from: '/args/to', to: '/args/from' } } },
    },
    {
      name: 'files.delete',
      description: 'Move a file to the trash (restorable).',
      inputSchema: { type: 'object', properties: { path: pathSchema }, required: ['path'] },
      action: 'file.delete',
      extract: { resources: ['/path'] },
      reversible: { undo: { tool: 'files.restore', args: { trashId: '/result/trashId', path: '/args/path' } } },
    },
    { name: 'files.restore', description: RESTORE, inputSchema: { type: 'object', properties: { trashId: { type: 'string' }, path: pathSchema }, required: ['trashId', 'path'] }, action: 'file.create', extract: { resources: ['/path'] } },
  ],
};
