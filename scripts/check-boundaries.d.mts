/** Domain folders under packages/server/src. */
export const DOMAINS: string[];
/** The import-boundary violations under `root`, one `<file>:<line> [rule] message` string each. */
export function checkBoundaries(root: string): string[];
