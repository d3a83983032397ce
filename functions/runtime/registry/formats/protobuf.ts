// Loaded only when a route meets a Protobuf schema: protobufjs stays out of every other route's init.
import protobuf from 'protobufjs';
import type { SchemaRef } from '../errors.ts';
import { InvalidSchemaError, SchemaMismatchError } from '../errors.ts';

export type ProtobufOptions = {
  /** Field names as written in the .proto (default true); false gives protobufjs's camelCase. */
  readonly keepCase?: boolean;
  /** protobufjs `toObject` options; default `{ longs: String, enums: String, defaults: true }`. */
  readonly toObject?: protobuf.IConversionOptions;
};

export type CompiledProto = {
  /** Confluent: the message a path of indexes names (`[0]` the first message, `[1, 0]` the first nested in the second). */
  byPath(indexes: readonly number[]): protobuf.Type;
  /** AWS Glue: every message of the file, nested ones too, sorted by full name; the record carries a position in that list. */
  byGlueIndex(index: number): protobuf.Type;
  decode(type: protobuf.Type, payload: Buffer): unknown;
};

const isType = (o: protobuf.ReflectionObject): o is protobuf.Type => o instanceof protobuf.Type;
const fullName = (t: protobuf.ReflectionObject): string => t.fullName.replace(/^\./, '');

const addWellKnownImports = (root: protobuf.Root, imports: readonly string[] | undefined, added: Set<string>) => {
  for (const file of imports ?? []) {
    if (added.has(file) || !file.startsWith('google/protobuf/')) continue;
    const json = protobuf.common.get(file) as { nested?: Record<string, protobuf.AnyNestedObject> } | null;
    if (json?.nested) root.addJSON(json.nested);
    added.add(file);
  }
};

/** Parses a .proto file (and the files it imports, given as references) into message lookups and a decoder. */
export const compileProtobuf = (
  ref: SchemaRef,
  schema: string,
  references: readonly { name: string; schema: string }[],
  options: ProtobufOptions = {},
): CompiledProto => {
  const parseOptions = { keepCase: options.keepCase ?? true, alternateCommentMode: false };
  const conversion: protobuf.IConversionOptions = options.toObject ?? { longs: String, enums: String, defaults: true };
  let topLevel: string[];
  let everyMessage: string[];
  const nestedOf = new Map<string, string[]>();
  let root: protobuf.Root;
  try {
    // The file alone, to know its own messages in declaration order (the references may share its package).
    const own = protobuf.parse(schema, new protobuf.Root(), parseOptions);
    const pkg = own.package ? own.root.lookup(own.package) : own.root;
    if (!(pkg instanceof protobuf.Namespace)) throw new Error(`package ${own.package} not found`);
    topLevel = pkg.nestedArray.filter(isType).map(fullName);
    everyMessage = [];
    const walk = (type: protobuf.Type) => {
      everyMessage.push(fullName(type));
      const nested = type.nestedArray.filter(isType);
      nestedOf.set(fullName(type), nested.map(fullName));
      for (const inner of nested) walk(inner);
    };
    for (const type of pkg.nestedArray.filter(isType)) walk(type);
    everyMessage.sort();

    root = new protobuf.Root();
    const added = new Set<string>();
    for (const reference of references) {
      const parsed = protobuf.parse(reference.schema, root, parseOptions);
      addWellKnownImports(root, parsed.imports, added);
    }
    addWellKnownImports(root, own.imports, added);
    protobuf.parse(schema, root, parseOptions);
    root.resolveAll();
  } catch (error) {
    throw new InvalidSchemaError(ref, `not a usable Protobuf schema: ${(error as Error).message}`, { cause: error });
  }
  const lookup = (name: string | undefined, what: string): protobuf.Type => {
    if (name === undefined) throw new SchemaMismatchError(ref, `no message at ${what}`);
    return root.lookupType(name);
  };
  return {
    byPath(indexes) {
      let name = topLevel[indexes[0] ?? 0];
      for (let depth = 1; depth < indexes.length && name !== undefined; depth++) {
        name = nestedOf.get(name)?.[indexes[depth] as number];
      }
      return lookup(name, `message index [${indexes.join(', ')}]`);
    },
    byGlueIndex(index) {
      return lookup(everyMessage[index], `Glue message index ${index}`);
    },
    decode(type, payload) {
      try {
        return type.toObject(type.decode(payload), conversion);
      } catch (error) {
        throw new SchemaMismatchError(ref, `Protobuf ${fullName(type)}: ${(error as Error).message}`, { cause: error });
      }
    },
  };
};
