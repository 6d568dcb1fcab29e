import { useSyncExternalStore } from 'react';

/** The app's screens; the hash holds the route so a reload or a shared link lands on the same screen. */
export type Page = 'dashboard' | 'inbox' | 'team' | 'notifications' | 'admin';

export interface Route {
  page: Page;
  /** e.g. the open conversation id on `#/inbox/<id>`. */
  param: string | null;
}

const pages: readonly Page[] = ['dashboard', 'inbox', 'team', 'notifications', 'admin'];

function parse(hash: string): Route {
  const [rawPage, ...rest] = hash.replace(/^#\/?/, '').split('/');
  const page = pages.find((p) => p === rawPage) ?? 'dashboard';
  const param = rest.length > 0 && rest[0] ? decodeURIComponent(rest.join('/')) : null;
  return { page, param };
}

let current = parse(window.location.hash);
const listeners = new Set<() => void>();
window.addEventListener('hashchange', () => {
  current = parse(window.location.hash);
  for (const listener of listeners) listener();
});

function subscribe(listener: () => void) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The current route; re-renders on navigation. */
export function useRoute(): Route {
  return useSyncExternalStore(subscribe, () => current);
}

/** The hash for a route, for links. */
export function href(page: Page, param?: string | null): string {
  return `#/${page}${param ? `/${encodeURIComponent(param)}` : ''}`;
}

export function navigate(page: Page, param?: string | null): void {
  window.location.hash = href(page, param);
}

/** The path reported as the user's presence page (what teammates see). */
export function routePath(route: Route): string {
  return `/${route.page}${route.param ? `/${route.param}` : ''}`;
}
