/**
 * Compile-time checks (run by `npm run typecheck`, never imported): the contract in `contract.ts`
 * describes exactly the server's router, so a client typed against it calls what the server serves.
 */
import type { inferRouterError, inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { AppRouter as ContractRouter } from './contract.js';
import type { AppRouter as ServerRouter } from './router.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
/** What the server sends fits what the contract declares (the contract's issue `code` is a plain string). */
type Fits<Actual, Declared> = [Actual] extends [Declared] ? true : false;

export type ContractChecks = [
  Expect<Equal<inferRouterInputs<ContractRouter>, inferRouterInputs<ServerRouter>>>,
  Expect<Equal<inferRouterOutputs<ContractRouter>, inferRouterOutputs<ServerRouter>>>,
  Expect<Fits<inferRouterError<ServerRouter>, inferRouterError<ContractRouter>>>,
  Expect<Equal<ContractRouter['_def']['record'], ServerRouter['_def']['record']>>,
];
