import type { CfnElement } from 'aws-cdk-lib';
import type { BridgeStack } from './stacks/BridgeStack.ts';

/**
 * Event source mapping changes that one deploy cannot make (issue #15, item 7).
 *
 * Lambda cannot change a mapping's source, topic, consumer group or starting position in place. The
 * CloudFormation registry schema of AWS::Lambda::EventSourceMapping lists EventSourceArn, SelfManagedEventSource,
 * StartingPosition and StartingPositionTimestamp as create-only, so a change replaces the mapping; the replacement
 * is created before the old mapping is deleted, and Lambda refuses a second mapping for the same function, source
 * and topic (aws-cdk#26416, aws-sam-cli#2308). ConsumerGroupId "cannot be updated" after creation (Lambda), and
 * a changed Topics is reported as updated without being applied (cloudformation-coverage-roadmap#2140), so both
 * need the same treatment. This module finds such changes between two templates of one stack and words the
 * two-step procedure; the app runs it on every synth.
 */

/** `-c compareWith=synth|aws|none`: what the new template is compared with. */
export const COMPARE_WITH_CONTEXT_KEY = 'compareWith';
export const COMPARE_WITH = ['synth', 'aws', 'none'] as const;
export type CompareWith = (typeof COMPARE_WITH)[number];

/**
 * `-c detachEventSource=<route>[,<route>]`: step 1, deploy the routes without their event source mappings (and the
 * alarms on the mappings' own metrics); functions, queues, tables and the other alarms stay.
 */
export const DETACH_CONTEXT_KEY = 'detachEventSource';
/** `-c acceptReplacement=<route>[,<route>]|true`: the old mappings are already gone; let the change through. */
export const ACCEPT_CONTEXT_KEY = 'acceptReplacement';

const ESM_TYPE = 'AWS::Lambda::EventSourceMapping';
const CONSUMER_GROUP_DOC = 'https://docs.aws.amazon.com/lambda/latest/dg/kafka-consumer-group-id.html';

type Properties = Readonly<Record<string, unknown>>;
type Resource = { readonly Type?: unknown; readonly Properties?: Properties; readonly Metadata?: Properties };

type Kind = 'source' | 'topic' | 'group' | 'position';
type ImmutableProperty = { readonly name: string; readonly kind: Kind; read(properties: Properties): unknown };

const field = (value: unknown, key: string): unknown =>
  typeof value === 'object' && value !== null ? (value as Properties)[key] : undefined;

/**
 * What a mapping cannot change in place. The consumer group is read from whichever Kafka config holds it, so a
 * switch between MSK and self-managed Kafka with the same group id reports the source only.
 */
const IMMUTABLE: readonly ImmutableProperty[] = [
  { name: 'EventSourceArn', kind: 'source', read: (p) => p.EventSourceArn },
  { name: 'SelfManagedEventSource', kind: 'source', read: (p) => p.SelfManagedEventSource },
  { name: 'Topics', kind: 'topic', read: (p) => p.Topics },
  {
    name: 'ConsumerGroupId',
    kind: 'group',
    read: (p) =>
      field(p.AmazonManagedKafkaEventSourceConfig, 'ConsumerGroupId') ??
      field(p.SelfManagedKafkaEventSourceConfig, 'ConsumerGroupId'),
  },
  { name: 'StartingPosition', kind: 'position', read: (p) => p.StartingPosition },
  { name: 'StartingPositionTimestamp', kind: 'position', read: (p) => p.StartingPositionTimestamp },
];

export type PropertyChange = {
  readonly property: string;
  readonly kind: Kind;
  /** `undefined`: the property is absent. */
  readonly before: unknown;
  readonly after: unknown;
};

/** A mapping, present in both templates under one logical ID, with properties it cannot change in place. */
export type MappingReplacement = {
  readonly logicalId: string;
  readonly route: string;
  readonly topic?: string;
  readonly consumerGroupId?: string;
  readonly startingPosition?: string;
  readonly changes: readonly PropertyChange[];
};

export type FindOptions = {
  /** Route names by mapping logical ID (see {@link mappingRoutes}); otherwise taken from the CDK path or the ID. */
  readonly routes?: ReadonlyMap<string, string>;
};

/** JSON with sorted keys, so that two values compare by content. */
const canonical = (value: unknown): string => {
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
};

const resourcesOf = (template: unknown): Readonly<Record<string, Resource>> => {
  const resources = field(template, 'Resources');
  return typeof resources === 'object' && resources !== null ? (resources as Record<string, Resource>) : {};
};

const stringOr = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** `kafka-lambda-bridge-dev/OrdersRoute/EventSource/Mapping/Resource` → `OrdersRoute`. */
const routeFromPath = (resource: Resource): string | undefined => {
  const path = stringOr(field(resource.Metadata, 'aws:cdk:path'));
  return path?.split('/').at(-4);
};

/**
 * Every `AWS::Lambda::EventSourceMapping` that has the same logical ID in `previous` and `next` and differs in a
 * property it cannot change in place (absent and present differ). Mappings only in one template are new or
 * removed, which CloudFormation does without a collision.
 */
export const findMappingReplacements = (
  previous: unknown,
  next: unknown,
  options: FindOptions = {},
): MappingReplacement[] => {
  const before = resourcesOf(previous);
  const replacements: MappingReplacement[] = [];
  for (const [logicalId, resource] of Object.entries(resourcesOf(next))) {
    const old = before[logicalId];
    if (resource.Type !== ESM_TYPE || old?.Type !== ESM_TYPE) continue;
    const now = resource.Properties ?? {};
    const then = old.Properties ?? {};
    const changes = IMMUTABLE.flatMap(({ name, kind, read }): PropertyChange[] =>
      canonical(read(then)) === canonical(read(now))
        ? []
        : [{ property: name, kind, before: read(then), after: read(now) }],
    );
    if (changes.length === 0) continue;
    const topics = now.Topics;
    replacements.push({
      logicalId,
      route: options.routes?.get(logicalId) ?? routeFromPath(resource) ?? logicalId,
      topic: Array.isArray(topics) ? stringOr(topics[0]) : undefined,
      consumerGroupId: stringOr(IMMUTABLE.find((p) => p.kind === 'group')?.read(now)),
      startingPosition: stringOr(now.StartingPosition),
      changes,
    });
  }
  return replacements;
};

/** Route names by the logical ID of their event source mapping in `stack` (detached routes have none). */
export const mappingRoutes = (stack: BridgeStack): Map<string, string> =>
  new Map(
    stack.routes.flatMap((route) =>
      route.eventSource
        ? [[stack.getLogicalId(route.eventSource.mapping.node.defaultChild as CfnElement), route.route.name]]
        : [],
    ),
  );

/**
 * A route list from context: `undefined`/empty → none, `true` (as given by `-c key=true` or in cdk.json) → all,
 * else comma-separated route names.
 */
export const parseRouteList = (value: unknown): readonly string[] | 'all' => {
  if (value === undefined || value === null || value === '' || value === false || value === 'false') return [];
  if (value === true || value === 'true') return 'all';
  if (typeof value !== 'string') {
    throw new TypeError(`expected route names separated by commas, got ${canonical(value)}`);
  }
  return value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
};

/** `-c compareWith`, defaulting to `synth`. */
export const parseCompareWith = (value: unknown): CompareWith => {
  if (value === undefined || value === null || value === '') return 'synth';
  if ((COMPARE_WITH as readonly unknown[]).includes(value)) return value as CompareWith;
  throw new TypeError(
    `-c ${COMPARE_WITH_CONTEXT_KEY} must be one of ${COMPARE_WITH.join(', ')} (got ${canonical(value)})`,
  );
};

const show = (value: unknown): string => (value === undefined ? '(unset)' : canonical(value));

/** `text` in lines of at most `width` characters (a longer word gets its own line), each after `indent`. */
const wrap = (text: string, indent: string, width = 112): string[] => {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(indent + line);
  return lines;
};

const positionConsequence = (position: string | undefined): string => {
  if (position === 'LATEST') return 'LATEST skips the records produced between step 1 and step 2';
  if (position === 'TRIM_HORIZON') return 'TRIM_HORIZON re-reads every record the topic still retains';
  return `${position ?? 'the starting position'} decides where it starts`;
};

/** What each kind of change means once the mapping is re-created, from the new mapping's own settings. */
const consequences = (replacement: MappingReplacement): string[] => {
  const { consumerGroupId: group, startingPosition: position } = replacement;
  const kinds = new Set(replacement.changes.map((c) => c.kind));
  const quoted = group === undefined ? 'the consumer group' : `consumer group "${group}"`;
  const notes: string[] = [];
  if (kinds.has('group')) {
    notes.push(
      `${quoted} starts at StartingPosition ${position ?? '(unset)'} if it has no committed offsets yet: ` +
        `${positionConsequence(position)}. If it exists, Lambda resumes from its offsets instead. ` +
        'The old group keeps its offsets on the cluster until Kafka expires them.',
    );
  } else if (kinds.has('position')) {
    notes.push(
      `Lambda ignores StartingPosition when ${quoted} already has committed offsets (${CONSUMER_GROUP_DOC}), so the ` +
        `re-created mapping resumes where the old one stopped. To really start at ${position ?? 'the new position'}, ` +
        'change consumerGroupId as well, or reset the group between the steps, while nothing consumes ' +
        `(kafka-consumer-groups.sh --reset-offsets --group ${group ?? '<group>'} --topic ${replacement.topic ?? '<topic>'} ... --execute).`,
    );
  }
  if (kinds.has('source') || kinds.has('topic')) {
    notes.push(
      `on the new ${kinds.has('source') ? 'cluster' : 'topic'}, ${quoted} resumes from its committed offsets there, ` +
        `if any, else starts at StartingPosition ${position ?? '(unset)'}: ${positionConsequence(position)}.`,
    );
  }
  return notes;
};

export type FormatOptions = {
  readonly stackName: string;
  /** Where the previous template came from, e.g. "cdk.out/x.template.json" or "the deployed stack". */
  readonly comparedWith: string;
};

/** The error message: what changed, why one deploy cannot do it, and the two steps that can. */
export const formatReplacements = (
  replacements: readonly MappingReplacement[],
  { stackName, comparedWith }: FormatOptions,
): string => {
  const routes = [...new Set(replacements.map((r) => r.route))].join(',');
  const lines = [
    `${stackName}: event source mapping changes that CloudFormation cannot deploy in one step (compared with ${comparedWith}):`,
    '',
  ];
  for (const replacement of replacements) {
    const topic = replacement.topic === undefined ? '' : `topic ${replacement.topic}, `;
    lines.push(`  route "${replacement.route}" (${topic}${replacement.logicalId}):`);
    for (const change of replacement.changes) {
      lines.push(`    ${change.property} ${show(change.before)} -> ${show(change.after)}`);
    }
  }
  lines.push(
    '',
    'Lambda cannot change these on an existing mapping. CloudFormation replaces it, creating the new mapping before',
    'deleting the old one, and Lambda refuses a second mapping for the same function, source and topic ("An event',
    'source mapping ... already exists"), so the update fails and rolls back; a changed Topics or ConsumerGroupId is',
    'otherwise rejected or silently not applied. Deploy it in two steps, with your usual -c options:',
    '',
    `  1. npm run deploy -- -c ${DETACH_CONTEXT_KEY}=${routes}`,
    '     deletes only these mappings; functions, queues, tables and alarms stay. Nothing consumes the topics',
    '     until step 2: records wait in Kafka, and the consumer groups keep their committed offsets.',
    '  2. npm run deploy',
    '     creates the mappings with the new values.',
    '',
  );
  for (const replacement of replacements) {
    for (const note of consequences(replacement)) lines.push(...wrap(`route "${replacement.route}": ${note}`, '  '));
  }
  lines.push(
    '',
    `Already deleted the old mappings another way (aws lambda delete-event-source-mapping)? Add -c ${ACCEPT_CONTEXT_KEY}=${routes}.`,
    `-c ${COMPARE_WITH_CONTEXT_KEY}=aws compares with the deployed stack instead; -c ${COMPARE_WITH_CONTEXT_KEY}=none turns this check off.`,
  );
  return lines.join('\n');
};

/** The replacements left once the accepted routes are taken out. */
export const unaccepted = (
  replacements: readonly MappingReplacement[],
  accepted: readonly string[] | 'all',
): MappingReplacement[] => (accepted === 'all' ? [] : replacements.filter((r) => !accepted.includes(r.route)));
