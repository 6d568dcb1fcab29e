import { TextDecoder, TextEncoder } from 'node:util';
import { configure } from '@testing-library/react';

// NOTE: under vitest's jsdom environment the global `Uint8Array` is jsdom's, while Node's crypto
// and TextEncoder produce Node's; jose (signing and verifying tokens in the in-process server)
// checks `instanceof Uint8Array` and refuses the key. Restore Node's constructors for the test.
const NodeUint8Array = Object.getPrototypeOf(Buffer.prototype).constructor as typeof Uint8Array;
Object.assign(globalThis, { TextEncoder, TextDecoder, Uint8Array: NodeUint8Array });

// A patient bound for waitFor on a loaded 2-core CI machine (it returns as soon as the check passes).
configure({ asyncUtilTimeout: 5_000 });
