import { BridgeError } from '../errors.ts';
import { InvalidSchemaError, RegistryUnavailableError, UnknownSchemaError } from './errors.ts';
import { LruCache } from './lru.ts';

export type SchemaType = 'AVRO' | 'PROTOBUF' | 'JSON';

/** A referenced schema, resolved: `name` is what the referencing schema imports (a .proto file, an Avro full name). */
export type ResolvedReference = {
  readonly name: string;
  readonly subject: string;
  readonly version: number;
  readonly schemaType: SchemaType;
  readonly schema: string;
};

export type RegisteredSchema = {
  readonly id: number;
  readonly schemaType: SchemaType;
  readonly schema: string;
  /** Every schema it references, transitively, dependencies before their dependents. */
  readonly references: readonly ResolvedReference[];
  readonly subject?: string | undefined;
};

type StaticAuth = { readonly username: string; readonly password: string } | { readonly token: string };

export type RegistryAuth =
  | { readonly username: string; readonly password: string }
  /** A bearer token, or a function that returns one (read from Secrets Manager once, say). */
  | { readonly token: string | (() => string | Promise<string>) }
  /** Basic or bearer credentials fetched on first use (a deployment's secret: see `registryFromEnvironment`). */
  | { readonly credentials: () => Promise<StaticAuth> };

export type ConfluentRegistryOptions = {
  /** Default: `SCHEMA_REGISTRY_URL`. User info in the URL (`https://user:pass@host`) becomes basic auth. */
  readonly url?: string;
  readonly auth?: RegistryAuth;
  /** Schemas kept per container; default 1000. */
  readonly cacheSize?: number;
  /** Per request; default 5000 ms. */
  readonly timeoutMs?: number;
  /** How long an unknown id stays known as unknown; default 60 s. */
  readonly notFoundTtlMs?: number;
  readonly fetch?: typeof fetch;
};

type RawSchema = {
  schema?: unknown;
  schemaType?: unknown;
  references?: { name: string; subject: string; version: number }[];
  subject?: unknown;
};

const SCHEMA_TYPES: readonly string[] = ['AVRO', 'PROTOBUF', 'JSON'];

/**
 * A Confluent-compatible schema registry client (Confluent, Apicurio's `/apis/ccompat/v7`, Redpanda, Karapace):
 * `GET /schemas/ids/{id}` and the references it names. A bounded cache per container, and one request per id in
 * flight: a hundred records with one id make one call.
 */
export class ConfluentRegistryClient {
  readonly #base: string;
  readonly #auth: RegistryAuth | undefined;
  readonly #timeoutMs: number;
  readonly #notFoundTtlMs: number;
  readonly #fetch: typeof fetch;
  readonly #cache: LruCache<string, RegisteredSchema | ResolvedReference>;
  readonly #notFound: LruCache<number, { until: number; detail: string }>;
  readonly #inFlight = new Map<string, Promise<RawSchema>>();
  /** Requests sent, for tests and metrics. */
  requests = 0;

  constructor(options: ConfluentRegistryOptions = {}) {
    const url = options.url ?? process.env.SCHEMA_REGISTRY_URL;
    if (!url) throw new BridgeError('no schema registry URL: pass `url` or set SCHEMA_REGISTRY_URL');
    const parsed = new URL(url);
    let auth = options.auth;
    if (parsed.username && !auth) {
      auth = { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) };
    }
    parsed.username = '';
    parsed.password = '';
    this.#base = parsed.toString().replace(/\/+$/, '');
    this.#auth = auth;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#notFoundTtlMs = options.notFoundTtlMs ?? 60_000;
    this.#fetch = options.fetch ?? fetch;
    this.#cache = new LruCache(options.cacheSize ?? 1000);
    this.#notFound = new LruCache(1000);
  }

  get url(): string {
    return this.#base;
  }

  /** The schema with this id and everything it references. 404 → UnknownSchemaError; unreachable → transient. */
  async getSchema(id: number): Promise<RegisteredSchema> {
    const key = `id:${id}`;
    const cached = this.#cache.get(key) as RegisteredSchema | undefined;
    if (cached) return cached;
    const missing = this.#notFound.get(id);
    if (missing && missing.until > Date.now()) throw new UnknownSchemaError({ id }, missing.detail);
    let raw: RawSchema;
    try {
      raw = await this.#get(key, `/schemas/ids/${id}`);
    } catch (error) {
      if (error instanceof NotFound) {
        this.#notFound.set(id, { until: Date.now() + this.#notFoundTtlMs, detail: error.message });
        throw new UnknownSchemaError({ id }, error.message);
      }
      throw error;
    }
    const schemaType = schemaTypeOf(raw, id);
    const references: ResolvedReference[] = [];
    await this.#resolveReferences(raw.references ?? [], references, new Set(), id);
    const schema: RegisteredSchema = {
      id,
      schemaType,
      schema: String(raw.schema),
      references,
      subject: typeof raw.subject === 'string' ? raw.subject : undefined,
    };
    this.#cache.set(key, schema);
    return schema;
  }

  async #resolveReferences(
    refs: readonly { name: string; subject: string; version: number }[],
    out: ResolvedReference[],
    seen: Set<string>,
    rootId: number,
  ): Promise<void> {
    for (const ref of refs) {
      const key = `ref:${ref.subject}@${ref.version}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let raw: RawSchema;
      try {
        raw = await this.#get(key, `/subjects/${encodeURIComponent(ref.subject)}/versions/${ref.version}`);
      } catch (error) {
        if (error instanceof NotFound) {
          throw new UnknownSchemaError(
            { id: rootId },
            `its reference ${ref.name} (subject ${ref.subject} version ${ref.version}) is missing: ${error.message}`,
          );
        }
        throw error;
      }
      await this.#resolveReferences(raw.references ?? [], out, seen, rootId);
      out.push({
        name: ref.name,
        subject: ref.subject,
        version: ref.version,
        schemaType: schemaTypeOf(raw, rootId),
        schema: String(raw.schema),
      });
    }
  }

  async #get(key: string, path: string): Promise<RawSchema> {
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const request = this.#request(path).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, request);
    return request;
  }

  async #request(path: string): Promise<RawSchema> {
    const url = `${this.#base}${path}`;
    const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
    const auth = this.#auth && 'credentials' in this.#auth ? await this.#auth.credentials() : this.#auth;
    if (auth && 'username' in auth) {
      headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    } else if (auth) {
      const token = typeof auth.token === 'function' ? await auth.token() : auth.token;
      headers.authorization = `Bearer ${token}`;
    }
    this.requests++;
    let response: Response;
    try {
      response = await this.#fetch(url, { headers, signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw new RegistryUnavailableError(`schema registry ${url} unreachable: ${(error as Error).message}`, undefined, {
        cause: error,
      });
    }
    const text = await response.text().catch(() => '');
    if (response.status === 404) throw new NotFound(registryMessage(text) ?? `404 from ${path}`);
    if (!response.ok) {
      const hint = response.status === 401 || response.status === 403 ? ' (check the registry credentials)' : '';
      throw new RegistryUnavailableError(
        `schema registry ${url} answered ${response.status}${hint}: ${registryMessage(text) ?? text.slice(0, 200)}`,
        response.status,
      );
    }
    try {
      return JSON.parse(text) as RawSchema;
    } catch (error) {
      throw new RegistryUnavailableError(`schema registry ${url} answered with invalid JSON`, response.status, {
        cause: error,
      });
    }
  }
}

class NotFound extends Error {}

const registryMessage = (text: string): string | undefined => {
  try {
    const body = JSON.parse(text) as { message?: unknown; error_code?: unknown };
    if (typeof body.message === 'string') {
      return body.error_code === undefined ? body.message : `${body.message} (error ${body.error_code})`;
    }
  } catch {}
  return undefined;
};

const schemaTypeOf = (raw: RawSchema, id: number): SchemaType => {
  if (typeof raw.schema !== 'string') {
    throw new RegistryUnavailableError(`schema registry: the answer for schema id ${id} holds no schema text`);
  }
  const type = raw.schemaType === undefined ? 'AVRO' : String(raw.schemaType);
  if (!SCHEMA_TYPES.includes(type)) {
    throw new InvalidSchemaError({ id }, `unsupported schemaType ${type}`);
  }
  return type as SchemaType;
};
