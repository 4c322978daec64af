// Type declarations of the diskq Node.js binding.

/** One self-play transition, written as one JSON line. */
export interface Transition {
  /** The observation; each value is rounded to a 32-bit float and must be finite. */
  obs: number[] | Float32Array | Float64Array;
  /** Legal-move mask: 0 or 1 per move (booleans are accepted in arrays). */
  mask: Array<number | boolean> | Uint8Array;
  /** The move taken: a safe integer, or a BigInt in the int64 range. */
  action: number | bigint;
  /** The reward; must be finite. */
  reward: number;
  /** True (or 1) on the player's last move of the game. */
  done: boolean | 0 | 1;
  gameId: string;
  playerId: string;
  /** Position of the transition in the player's game: a non-negative safe integer or a uint64 BigInt. */
  seq: number | bigint;
}

/** Options of Producer.open; each left out keeps the library's default. */
export interface ProducerOptions {
  /** A lot is published once it contains this many transitions (default 500). */
  maxLotLines?: number | bigint;
  /** A lot is published before it would pass this many bytes (default 512 KiB). */
  maxLotBytes?: number | bigint;
  /** A lot is published once this many milliseconds old (default 2000; 0 turns it off). */
  maxLotAgeMs?: number | bigint;
  /** Longer lines are rejected (default 16 MiB). */
  maxLineBytes?: number | bigint;
  /** Hand every push to the kernel before it returns, so a killed process loses no accepted push (default false). */
  writeThrough?: boolean;
  /** fsync each lot and its directory around publishing (default false). */
  durable?: boolean;
  /** Publish the .part lots of dead producers when opening (default true). */
  recoverOnOpen?: boolean;
  /** Lot encoding: JSON lines, or smaller binary records that consumers read alike (default "json"). */
  format?: 'json' | 'binary';
}

/** Options of Consumer.open; each left out keeps the library's default. */
export interface ConsumerOptions {
  /** Output folder (default "dataset/transitions", relative to the working directory). */
  outputDir?: string;
  /** Consumer id: 1 to 32 ASCII letters, digits, '-' or '_' (default "main"). */
  consumerId?: string;
  /** An output file rolls over before a lot would pass this many lines (default 5000). */
  maxOutputLines?: number | bigint;
  /** Lines longer than this make their lot invalid (default 16 MiB). */
  maxLineBytes?: number | bigint;
  /** fsync output and directories before each lot is archived (default false). */
  durable?: boolean;
  /** Milliseconds between scans for dead producers' .part lots (default 10000; 0 turns it off). */
  recoverIntervalMs?: number | bigint;
  /** Parse every line as JSON; false trusts lots with a checksum, checked by CRC-32 and line form (default true). */
  fullValidation?: boolean;
  /** Compress archived lots into .done.gz (default false). */
  compressArchive?: boolean;
  /** Archived lots older than this many milliseconds are deleted (default 0: kept). */
  archiveMaxAgeMs?: number | bigint;
  /** The oldest archived lots are deleted until the archive fits in this many bytes (default 0: no limit). */
  archiveMaxBytes?: number | bigint;
  /** Output files: JSON lines (.jsonl), or binary records (.dqb) that diskq cat prints (default "json"). */
  outputFormat?: 'json' | 'binary';
}

/** Counts of one poll cycle. */
export interface PollResult {
  lots: number;
  lines: number;
  bytes: number;
  quarantined: number;
  finishedFiles: number;
}

/** Sums over a Consumer.run loop. */
export interface RunTotals extends PollResult {
  polls: number;
}

export interface RunOptions {
  /** Milliseconds between polls (default 1000). */
  intervalMs?: number;
  /** Stops the loop after the current poll. */
  signal?: AbortSignal;
  /** Called with the counts of every poll. */
  onPoll?: (counts: PollResult) => void;
}

export declare class Producer {
  private constructor();
  /** Opens a producer on an existing queue directory. It is closed at process exit if still open. */
  static open(dir: string, options?: ProducerOptions): Producer;
  /** Returns the library's default options. */
  static defaultOptions(): Required<ProducerOptions>;
  readonly dir: string;
  /** True once close() succeeded. */
  readonly closed: boolean;
  /** Pushes one transition through dq_producer_push_transition. */
  push(transition: Transition): void;
  /** Pushes one JSON object, given as text or UTF-8 bytes. */
  pushJson(line: string | Uint8Array): void;
  /**
   * Pushes many transitions in one FFI call and returns how many were
   * accepted. A thrown error has `accepted`: the items before the failing one.
   */
  pushMany(transitions: Transition[]): number;
  /** Publishes the current lot now. */
  flush(): void;
  /** Publishes what is pending and closes the producer; later calls throw DQ_STATUS_CLOSED. */
  close(): void;
}

export declare class Consumer {
  private constructor();
  /** Opens a consumer on a queue directory, taking the lock of its consumer id. */
  static open(dir: string, options?: ConsumerOptions): Consumer;
  /** Returns the library's default options; outputDir and consumerId are null, for "dataset/transitions" and "main". */
  static defaultOptions(): Omit<Required<ConsumerOptions>, 'outputDir' | 'consumerId'> & {
    outputDir: null;
    consumerId: null;
  };
  readonly dir: string;
  readonly closed: boolean;
  /** Runs one poll cycle. */
  poll(): PollResult;
  /** Polls every intervalMs until the signal aborts; does not close the consumer. */
  run(options?: RunOptions): Promise<RunTotals>;
  /** Finishes the current output file, closes the consumer and releases its id. */
  close(): void;
}

/** A failed library call. */
export declare class DiskqError extends Error {
  /** The status name, such as 'DQ_STATUS_NON_FINITE'. */
  readonly code: string;
  /** The status number. */
  readonly status: number;
  /** For pushMany: how many items were accepted before the failure. */
  accepted?: number;
}

export type BackendName = 'koffi' | 'ffi-napi';

/** Producer and Consumer over one backend and one library file. */
export interface Binding {
  readonly backend: BackendName;
  readonly libraryPath: string;
  readonly Producer: typeof Producer;
  readonly Consumer: typeof Consumer;
  version(): string;
  statusName(status: number): string;
}

export interface LoadOptions {
  /** Default: DISKQ_NODE_BACKEND, else 'koffi'. */
  backend?: BackendName;
  /** Default: DISKQ_LIB, else target/release then target/debug of the repository. */
  library?: string;
}

/** Returns the binding for a backend and library, loading it on first use. */
export declare function load(options?: LoadOptions): Binding;
/** Returns the version of the library of the default binding. */
export declare function version(): string;
/** Returns how many producers and consumers the exit hook would close now. */
export declare function openHandleCount(): number;

export declare const STATUS: Readonly<{
  DQ_STATUS_OK: 0;
  DQ_STATUS_NULL_ARGUMENT: 1;
  DQ_STATUS_INVALID_ARGUMENT: 2;
  DQ_STATUS_INVALID_JSON: 3;
  DQ_STATUS_NON_FINITE: 4;
  DQ_STATUS_INVALID_FIELD: 5;
  DQ_STATUS_LINE_TOO_LONG: 6;
  DQ_STATUS_IO: 7;
  DQ_STATUS_CLOSED: 8;
  DQ_STATUS_POISONED: 9;
  DQ_STATUS_LOCKED: 10;
  DQ_STATUS_PANIC: 11;
}>;
export declare const BACKENDS: readonly BackendName[];
export declare const DEFAULT_BACKEND: BackendName;
