// Inputs and outputs of autoparallelized ops: ConfigSet (items, files, globs), OutputSpec (memory,
// one file, one file per input), and the JSON Lines and extended XYZ formats they read and write.

export { ConfigSet, type ConfigSetOptions, type ConfigSetSource, type InputFile } from './configset.js';
export { OutputSpec, OutputWriteError, type OutputFiles, type OutputSpecOptions, type StoredResult } from './outputspec.js';
export { formatLoc, LOC_KEY, type Loc, type Located, type Nested } from './loc.js';
export { formatOf, type FileFormat } from './formats.js';
export {
  ExtxyzParser, formatExtxyz, formatFrame, isFrame, parseExtxyz, readExtxyzFile,
  type AtomValue, type ColumnType, type ExtxyzScalar, type Frame, type InfoValue,
} from './extxyz.js';
export { formatJsonLine, formatJsonLines, parseJsonLines, readJsonLinesFile } from './jsonl.js';
export { expandGlob } from './glob.js';
