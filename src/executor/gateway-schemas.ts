// The JSON schemas of the gateway's requests. Fastify validates every body, query string and
// path parameter against them before a handler runs, and `describeValidation` turns ajv's findings
// into one sentence naming the field, so that a client's mistake is a 400 that says what to fix.
import { SUBMISSION_STATUSES } from './types.js';

/** Longest a long-polled lease request waits for a task before answering 204. */
export const MAX_LEASE_WAIT_MS = 20_000;
/** Largest page of `GET /api/v1/tasks`. */
export const MAX_PAGE = 1000;

const idString = { type: 'string', minLength: 1, maxLength: 200 } as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { ...idString, description: 'Submission id (xs_…).' } },
} as const;

export const codeParams = {
  type: 'object',
  required: ['hash'],
  properties: { hash: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$', description: 'Code bundle hash.' } },
} as const;

export const submitBody = {
  type: 'object',
  required: ['workflow'],
  additionalProperties: false,
  properties: {
    workflow: { type: 'string', minLength: 1, description: 'Name of a workflow the executor was launched with.' },
    input: { description: "One submission's input, encoded with xpr's value codec (plain JSON is valid)." },
    inputs: { type: 'array', minItems: 1, description: 'Many inputs: one submission each, ids in the same order.' },
  },
} as const;

export const listQuery = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: [...SUBMISSION_STATUSES] },
    offset: { type: 'integer', minimum: 0, default: 0 },
    limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50 },
  },
} as const;

export const getQuery = {
  type: 'object',
  properties: { results: { type: 'boolean', default: false, description: 'Include the result of a successful submission.' } },
} as const;

export const leaseBody = {
  type: 'object',
  required: ['stage', 'workerId'],
  additionalProperties: false,
  properties: {
    stage: { type: 'string', minLength: 1 },
    workerId: { type: 'string', minLength: 1, maxLength: 200 },
    cores: { type: 'number', minimum: 0 },
    waitMs: { type: 'integer', minimum: 0, maximum: MAX_LEASE_WAIT_MS, description: 'How long to wait for a task (default and most: 20000).' },
  },
} as const;

const leaseFields = {
  stage: { type: 'string', minLength: 1 },
  taskId: { type: 'string', minLength: 1, maxLength: 200 },
  leaseToken: { type: 'string', minLength: 1, maxLength: 200 },
  workerId: { type: 'string', minLength: 1, maxLength: 200 },
} as const;

export const heartbeatBody = {
  type: 'object',
  required: ['stage', 'taskId', 'leaseToken'],
  additionalProperties: false,
  properties: { ...leaseFields },
} as const;

export const completeBody = {
  type: 'object',
  required: ['stage', 'taskId', 'leaseToken', 'outcome'],
  additionalProperties: false,
  properties: {
    ...leaseFields,
    outcome: {
      type: 'object',
      required: ['value', 'readInput'],
      properties: { value: {}, readInput: { type: 'boolean' } },
    },
  },
} as const;

export const failBody = {
  type: 'object',
  required: ['stage', 'taskId', 'leaseToken', 'error', 'transient'],
  additionalProperties: false,
  properties: {
    ...leaseFields,
    error: {
      type: 'object',
      required: ['name', 'message'],
      properties: {
        name: { type: 'string' },
        message: { type: 'string' },
        stack: { type: 'string' },
        code: { type: 'string' },
      },
    },
    transient: { type: 'boolean', description: 'An infrastructure error: the task is retried with backoff. Otherwise the stage failed.' },
  },
} as const;

export const cacheImportBody = {
  description: 'JSON Lines of cache records (application/x-ndjson or text/plain), or { records: [...] }.',
  anyOf: [
    { type: 'string' },
    {
      type: 'object',
      required: ['records'],
      additionalProperties: false,
      properties: { records: { type: 'array', items: { type: 'object' } } },
    },
  ],
} as const;

export const clearQuery = {
  type: 'object',
  properties: { failed: { type: 'boolean', default: false, description: 'Clear the failed tasks kept in the stage queues, not the cache.' } },
} as const;

/** One finding of ajv, as Fastify hands them to `schemaErrorFormatter`. */
export interface ValidationFinding {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** `body/inputs/0` → `body.inputs[0]`; Fastify's "querystring" reads as "query" to a user. */
function fieldName(dataVar: string, instancePath: string): string {
  let out = dataVar === 'querystring' ? 'query' : dataVar;
  for (const step of instancePath.split('/').slice(1)) {
    const key = step.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return out;
}

/** One sentence per finding, naming the field and what is valid. */
export function describeValidation(findings: readonly ValidationFinding[], dataVar: string): string {
  const sentences = findings.map((f) => {
    const field = fieldName(dataVar, f.instancePath);
    switch (f.keyword) {
      case 'required':
        return `${field}.${String(f.params.missingProperty)} is required`;
      case 'additionalProperties':
        return `${field}.${String(f.params.additionalProperty)} is not a known field`;
      case 'enum':
        return `${field} must be one of: ${(f.params.allowedValues as unknown[]).map(String).join(', ')}`;
      default:
        return `${field} ${f.message ?? 'is invalid'}`;
    }
  });
  return [...new Set(sentences)].join('; ');
}
