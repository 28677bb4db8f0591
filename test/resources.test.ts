import { describe, expect, it } from 'vitest';
import { ConfigError, XprError } from '../src/errors.js';
import { checkResources, Resources, type Partition } from '../src/resources/index.js';

const GB = 1024 ** 2;
const HOUR = 3600;
const UNLIMITED = Number.POSITIVE_INFINITY;

// ExPyRe's test config (tests/assets/expyre_dummy_config.json), units parsed.
const cluster: Record<string, Partition> = {
  'node16_1,node16_2': { num_cores: 16, max_time: UNLIMITED, max_mem: 60 * GB },
  node36: { num_cores: 36, max_time: UNLIMITED, max_mem: 180 * GB },
  node32: { num_cores: 32, max_time: UNLIMITED, max_mem: 180 * GB },
  node_bigmem: { num_cores: 56, max_time: UNLIMITED, max_mem: 1500 * GB },
  node_bigmem_72: { num_cores: 72, max_time: UNLIMITED, max_mem: 1500 * GB },
};

const timeLimited: Record<string, Partition> = {
  debug: { num_cores: 40, max_time: 1 * HOUR, max_mem: 120 * GB },
  standard: { num_cores: 40, max_time: 168 * HOUR, max_mem: 120 * GB },
};

function issuesOf(input: unknown, options?: Parameters<typeof checkResources>[1]): Array<[string, string]> {
  const { resources, issues } = checkResources(input, options);
  if (issues.length === 0) expect(resources).toBeInstanceOf(Resources);
  return issues.map((i) => [i.path, i.message]);
}

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    if (e instanceof Error) return e;
  }
  throw new Error('expected a throw');
}

describe('Resources validation', () => {
  it('parses a valid spec into seconds and kB', () => {
    const r = Resources.parse({ num_cores: 4, max_time: '1.5h', max_mem_per_core: '2gb', partitions: 'std' });
    expect(r.numCores).toBe(4);
    expect(r.numNodes).toBeUndefined();
    expect(r.maxTime).toBe(5400);
    expect(r.maxMem).toEqual({ kB: 2 * GB, per: 'core' });
    expect(r.partitions).toEqual(['std']);
    expect(r.toSpec()).toEqual({ num_cores: 4, max_time: 5400, max_mem_per_core: 2 * GB, partitions: ['std'] });
    expect(Resources.parse(r.toSpec()).toSpec()).toEqual(r.toSpec());
  });

  it('returns a Resources given one', () => {
    const r = Resources.parse({ num_nodes: 1, max_time: 60 });
    expect(Resources.parse(r)).toBe(r);
  });

  it('treats null as absent, like ExPyRe keyword defaults', () => {
    const r = Resources.parse({ num_nodes: 2, num_cores: null, max_time: '10m', max_mem_tot: null });
    expect(r.numNodes).toBe(2);
    expect(r.maxMem).toBeUndefined();
  });

  it('accepts queues as a synonym of partitions', () => {
    expect(Resources.parse({ num_nodes: 1, max_time: 60, queues: ['deb.*'] }).partitions).toEqual(['deb.*']);
  });

  it.each<[string, Record<string, unknown>, Array<[string, RegExp]>]>([
    ['both num_nodes and num_cores', { num_nodes: 1, num_cores: 16, max_time: '1h' }, [['resources', /exactly one of num_nodes and num_cores, not both/]]],
    ['neither num_nodes nor num_cores', { max_time: '1h' }, [['resources', /missing num_nodes or num_cores/]]],
    ['missing max_time', { num_cores: 1 }, [['resources.max_time', /required: integer seconds/]]],
    ['bad max_time', { num_cores: 1, max_time: 'soon' }, [['resources.max_time', /Invalid time "soon".*\[D-\]HH:MM:SS/]]],
    ['zero max_time', { num_cores: 1, max_time: 0 }, [['resources.max_time', /more than 0 s/]]],
    ['boolean max_time', { num_cores: 1, max_time: true }, [['resources.max_time', /expected integer seconds.*got true/]]],
    ['num_cores as a string', { num_cores: '4', max_time: 60 }, [['resources.num_cores', /positive integer, got "4"/]]],
    ['zero num_nodes', { num_nodes: 0, max_time: 60 }, [['resources.num_nodes', /positive integer, got 0/]]],
    ['fractional num_cores', { num_cores: 1.5, max_time: 60 }, [['resources.num_cores', /positive integer/]]],
    ['both memory keys', { num_cores: 1, max_time: 60, max_mem_tot: 1, max_mem_per_core: 2 }, [['resources', /at most one of max_mem_tot and max_mem_per_core/]]],
    ['bad memory', { num_cores: 1, max_time: 60, max_mem_tot: '4gib' }, [['resources.max_mem_tot', /Invalid memory "4gib"/]]],
    ['unitless memory string', { num_cores: 1, max_time: 60, max_mem_per_core: '1000' }, [['resources.max_mem_per_core', /no unit/]]],
    ['both partitions and queues', { num_cores: 1, max_time: 60, partitions: 'a', queues: 'b' }, [['resources', /at most one of partitions and queues/]]],
    ['empty partitions list', { num_cores: 1, max_time: 60, partitions: [] }, [['resources.partitions', /non-empty list of regexps/]]],
    ['non-string partition', { num_cores: 1, max_time: 60, partitions: ['a', 3] }, [['resources.partitions', /got an array \["a",3\]/]]],
    ['invalid regexp', { num_cores: 1, max_time: 60, partitions: ['ok', 'std('] }, [['resources.partitions.1', /invalid regexp "std\("/]]],
    ['invalid regexp string', { num_cores: 1, max_time: 60, queues: '[' }, [['resources.queues', /invalid regexp/]]],
  ])('rejects %s', (_name, input, expected) => {
    const got = issuesOf(input);
    expect(got).toHaveLength(expected.length);
    expected.forEach(([path, message], i) => {
      expect(got[i]?.[0]).toBe(path);
      expect(got[i]?.[1]).toMatch(message);
    });
  });

  it('names the valid keys, and the likely one, for an unknown key', () => {
    const [issue, ...rest] = issuesOf({ num_core: 4, max_time: 60, num_nodes: 1 });
    expect(rest).toEqual([]);
    expect(issue?.[0]).toBe('resources.num_core');
    expect(issue?.[1]).toMatch(/unknown key \(did you mean "num_cores"\?\)/);
    expect(issue?.[1]).toMatch(/valid keys: num_nodes, num_cores, max_time, max_mem_tot, max_mem_per_core, partitions, queues/);
  });

  it('rejects a non-object at the resources path', () => {
    expect(issuesOf('4 cores')).toEqual([['resources', expect.stringMatching(/expected an object with keys num_nodes/)]]);
    expect(issuesOf([1])).toHaveLength(1);
    expect(issuesOf(null)).toHaveLength(1);
  });

  it('reports every problem at once, as a ConfigError with key paths under `where`', () => {
    const input = { num_nodes: 1, num_cores: 2, max_time: 'x', max_mem_tot: '1q', bogus: 1 };
    const e = thrown(() => Resources.parse(input, { where: 'remoteinfo.json: calculate.resources' }));
    expect(e).toBeInstanceOf(ConfigError);
    const issues = (e as ConfigError).issues;
    expect(issues.map((i) => i.path).sort()).toEqual([
      'remoteinfo.json: calculate.resources',
      'remoteinfo.json: calculate.resources.bogus',
      'remoteinfo.json: calculate.resources.max_mem_tot',
      'remoteinfo.json: calculate.resources.max_time',
    ]);
    expect(e.message).toMatch(/^Invalid resources \(4 problems\):/);
    expect(e.message).toContain('remoteinfo.json: calculate.resources.max_time: Invalid time "x"');
  });

  it('uses bare key paths for an empty where, and records the file', () => {
    const { issues } = checkResources({ num_cores: 1 }, { where: '', file: '/p/remoteinfo.json' });
    expect(issues).toEqual([{ file: '/p/remoteinfo.json', path: 'max_time', message: expect.stringMatching(/^required/) }]);
  });
});

describe('Resources.findNodes', () => {
  const find = (spec: Record<string, unknown>, partitions = cluster, options = {}) =>
    Resources.parse(spec).findNodes(partitions, options);

  it.each<[Record<string, unknown>, string, number, number, number]>([
    // ExPyRe's test_cores, with the same answers.
    [{ num_cores: 16 }, 'node16_1,node16_2', 1, 16, 16],
    [{ num_cores: 32 }, 'node16_1,node16_2', 2, 32, 16], // ties with node32 (both exact): config order
    [{ num_cores: 36 }, 'node36', 1, 36, 36],
    [{ num_nodes: 1 }, 'node16_1,node16_2', 1, 16, 16],
    [{ num_nodes: 1, partitions: 'node_bigmem' }, 'node_bigmem', 1, 56, 56],
    [{ num_nodes: 1, partitions: '.*bigmem' }, 'node_bigmem', 1, 56, 56],
    [{ num_nodes: 3, partitions: ['node3.*'] }, 'node36', 3, 108, 36],
  ])('%j → %s × %i nodes (%i cores, %i per node)', (spec, key, numNodes, numCores, perNode) => {
    const choice = find({ max_time: '1h', ...spec });
    expect(choice).toEqual({ partitionKey: key, partition: key, numNodes, numCores, numCoresPerNode: perNode, maxTime: 3600 });
  });

  it('uses the partition field as the scheduler name', () => {
    const choice = find({ max_time: 60, num_nodes: 2 }, { std: { num_cores: 8, max_time: HOUR, partition: 'compute' } });
    expect(choice.partitionKey).toBe('std');
    expect(choice.partition).toBe('compute');
    expect(choice.numCores).toBe(16);
  });

  describe('time', () => {
    it.each<[string | number, number, string]>([
      ['30m', 1, 'debug'],
      ['00:30', 1, 'debug'],
      ['1h', 1, 'debug'], // equal to the limit fits
      [3601, 1, 'standard'],
      ['1:05:00', 2, 'standard'],
      ['2-1:10:05', 1, 'standard'],
    ])('max_time %j on %i nodes → %s', (maxTime, numNodes, key) => {
      const choice = find({ max_time: maxTime, num_nodes: numNodes }, timeLimited);
      expect(choice.partitionKey).toBe(key);
      expect(choice.numNodes).toBe(numNodes);
    });

    it('fits 80 cores on two nodes of the partition whose limit is long enough', () => {
      expect(find({ max_time: '1:05:00', num_cores: 80 }, timeLimited)).toMatchObject({ partitionKey: 'standard', numNodes: 2, numCores: 80 });
    });

    it('rejects a time longer than every limit', () => {
      expect(() => find({ max_time: '169h', num_nodes: 1 }, timeLimited)).toThrow(/standard: max_time 169:00:00 is longer than its limit 168:00:00/);
    });
  });

  describe('exact fit', () => {
    it('rejects a core count that is no multiple of any node size', () => {
      expect(() => find({ max_time: '1h', num_cores: 17 })).toThrow(XprError);
    });

    it.each<[number, string, number, number]>([
      [17, 'node16_1,node16_2', 2, 32],
      [36, 'node36', 1, 36],
      [71, 'node36', 2, 72], // 1 idle core beats 16×5 (9), 32×3 (25), 56×2 (41), 72 (1, later in order)
      [40, 'node16_1,node16_2', 3, 48], // least waste: 8 idle cores
    ])('exactFit=false: %i cores → %s × %i nodes = %i cores', (cores, key, numNodes, numCores) => {
      const choice = find({ max_time: '1h', num_cores: cores }, cluster, { exactFit: false });
      expect(choice).toMatchObject({ partitionKey: key, numNodes, numCores });
    });

    it('breaks ties by config order', () => {
      const reversed = Object.fromEntries(Object.entries(cluster).reverse());
      expect(find({ max_time: '1h', num_cores: 32 }, reversed).partitionKey).toBe('node32');
      expect(find({ max_time: '1h', num_cores: 144 }, reversed).partitionKey).toBe('node_bigmem_72');
    });
  });

  describe('memory', () => {
    it('per core: picks nodes with enough memory for a full node of such cores', () => {
      const choice = find({ max_time: '1h', num_nodes: 1, max_mem_per_core: '17gb' });
      expect(choice).toMatchObject({ partitionKey: 'node_bigmem', maxMemPerNode: 17 * 56 * GB });
    });

    it('total: picks nodes that can hold it', () => {
      const choice = find({ max_time: '1h', num_nodes: 1, max_mem_tot: '1tb' });
      expect(choice).toMatchObject({ partitionKey: 'node_bigmem', maxMemPerNode: 1024 * GB });
    });

    it('total: is split over the nodes', () => {
      // 100 GB over 2 nodes is 50 GB each, within the 16-core nodes' 60 GB.
      const choice = find({ max_time: '1h', num_nodes: 2, max_mem_tot: '100gb' });
      expect(choice).toMatchObject({ partitionKey: 'node16_1,node16_2', numNodes: 2, maxMemPerNode: 50 * GB });
      expect(find({ max_time: '1h', num_nodes: 1, max_mem_tot: '100gb' }).partitionKey).toBe('node36');
    });

    it('is reported but not checked where the partition states no max_mem', () => {
      const choice = find({ max_time: 60, num_cores: 4, max_mem_per_core: '1tb' }, { any: { num_cores: 4, max_time: HOUR } });
      expect(choice.maxMemPerNode).toBe(4 * 1024 * GB);
    });

    it('is absent from the choice when not asked for', () => {
      expect(find({ max_time: 60, num_cores: 16 })).not.toHaveProperty('maxMemPerNode');
    });
  });

  describe('partitions regexps', () => {
    const parts: Record<string, Partition> = {
      std: { num_cores: 8, max_time: 1 * HOUR },
      std_long: { num_cores: 8, max_time: 48 * HOUR },
      debug: { num_cores: 8, max_time: 1 * HOUR },
    };

    it("are anchored: 'std' does not match 'std_long'", () => {
      expect(() => find({ max_time: '2h', num_nodes: 1, partitions: 'std' }, parts)).toThrow(/std_long: not matched by partitions \["std"\]/);
      expect(find({ max_time: '2h', num_nodes: 1, partitions: 'std.*' }, parts).partitionKey).toBe('std_long');
    });

    it("anchor the whole alternation: 'std|debug' does not match 'std_long'", () => {
      expect(() => find({ max_time: '2h', num_nodes: 1, partitions: 'std|debug' }, parts)).toThrow(/std_long: not matched/);
    });

    it('any regexp of a list may match', () => {
      expect(find({ max_time: '2h', num_nodes: 1, partitions: ['debug', 'std_l.ng'] }, parts).partitionKey).toBe('std_long');
      expect(find({ max_time: '30m', num_nodes: 1, queues: ['standard', 'debug'] }, timeLimited).partitionKey).toBe('debug');
    });

    it("a prefix alone does not match ('deb')", () => {
      expect(() => find({ max_time: '30m', num_nodes: 1, partitions: ['deb'] }, timeLimited)).toThrow(/debug: not matched/);
    });
  });

  describe('partial node', () => {
    it('puts 40 cores on one 56-core node (ExPyRe raises here)', () => {
      const choice = find({ max_time: '1h', num_cores: 40 }, cluster, { partialNode: true });
      expect(choice).toEqual({
        partitionKey: 'node_bigmem', partition: 'node_bigmem', numNodes: 1, numCores: 40, numCoresPerNode: 40, maxTime: 3600,
      });
    });

    it('takes the smallest node that holds the job', () => {
      expect(find({ max_time: '1h', num_cores: 8 }, cluster, { partialNode: true })).toMatchObject({
        partitionKey: 'node16_1,node16_2', numNodes: 1, numCores: 8, numCoresPerNode: 8,
      });
      expect(find({ max_time: '1h', num_cores: 32 }, cluster, { partialNode: true }).partitionKey).toBe('node32');
    });

    it('prefers one node over several even when several fit exactly', () => {
      const parts = { small: { num_cores: 16, max_time: HOUR }, big: { num_cores: 64, max_time: HOUR } };
      expect(find({ max_time: 60, num_cores: 32 }, parts, { partialNode: true })).toMatchObject({ partitionKey: 'big', numCoresPerNode: 32 });
      expect(find({ max_time: 60, num_cores: 32 }, parts).partitionKey).toBe('small');
    });

    it('falls back to whole nodes when no node holds the job', () => {
      expect(find({ max_time: '1h', num_cores: 144 }, cluster, { partialNode: true })).toMatchObject({
        partitionKey: 'node16_1,node16_2', numNodes: 9, numCores: 144, numCoresPerNode: 16,
      });
      expect(() => find({ max_time: '1h', num_cores: 145 }, cluster, { partialNode: true }))
        .toThrow(/node_bigmem_72: 145 cores neither fit in one 72-core node \(partial_node\) nor are a multiple of 72/);
    });

    it('checks memory against the cores actually used on the node', () => {
      const parts = { n: { num_cores: 56, max_time: HOUR, max_mem: 100 * GB } };
      expect(find({ max_time: 60, num_cores: 40, max_mem_per_core: '2gb' }, parts, { partialNode: true }).maxMemPerNode).toBe(80 * GB);
      expect(() => find({ max_time: 60, num_cores: 40, max_mem_per_core: '3gb' }, parts, { partialNode: true }))
        .toThrow(/n: needs 3gb per core × 40 cores = 120gb per node, its nodes have 100gb/);
    });

    it('leaves num_nodes requests on whole nodes', () => {
      expect(find({ max_time: '1h', num_nodes: 2 }, cluster, { partialNode: true })).toMatchObject({ numNodes: 2, numCores: 32, numCoresPerNode: 16 });
    });
  });

  describe('when nothing fits', () => {
    const parts: Record<string, Partition> = {
      short: { num_cores: 16, max_time: 1 * HOUR, max_mem: 64 * GB },
      odd: { num_cores: 36, max_time: 48 * HOUR, max_mem: 64 * GB },
      small: { num_cores: 16, max_time: 48 * HOUR, max_mem: 8 * GB },
      gpu: { num_cores: 16, max_time: 48 * HOUR, max_mem: 64 * GB },
    };

    it('names each partition and why it was rejected', () => {
      const e = thrown(() => find({ max_time: '2h', num_cores: 32, max_mem_per_core: '1gb', partitions: ['short', 'odd', 'small'] }, parts));
      expect(e).toBeInstanceOf(XprError);
      expect(e.message.split('\n')).toEqual([
        'No partition fits num_cores=32, max_time=02:00:00, max_mem_per_core=1gb, partitions=["short","odd","small"] (exact_fit=true, partial_node=false):',
        '  short: max_time 02:00:00 is longer than its limit 01:00:00',
        '  odd: 32 cores are not a multiple of its 36 cores per node (exact_fit)',
        '  small: needs 1gb per core × 16 cores = 16gb per node, its nodes have 8gb',
        '  gpu: not matched by partitions ["short","odd","small"] (a regexp must match the whole name)',
      ]);
      const hint = (e as XprError).hint ?? '';
      expect(hint).toMatch(/shorter max_time/);
      expect(hint).toMatch(/exact_fit: false/);
      expect(hint).toMatch(/less memory/);
      expect(hint).toMatch(/widen the partitions regexps/);
    });

    it('lists every reason of one partition', () => {
      expect(() => find({ max_time: '2h', num_cores: 20, max_mem_tot: '100gb' }, { short: parts.short! }))
        .toThrow(/short: max_time 02:00:00 is longer than its limit 01:00:00; 20 cores are not a multiple/);
      expect(() => find({ max_time: '2h', num_nodes: 1, max_mem_tot: '100gb' }, { short: parts.short! }))
        .toThrow(/short: max_time .*; needs 100gb per node, its nodes have 64gb/);
    });

    it('says so when there are no partitions at all', () => {
      expect(() => find({ max_time: 60, num_cores: 1 }, {})).toThrow(/No partitions to choose from/);
    });
  });
});
