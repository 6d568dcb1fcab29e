import type { WorkspaceRole } from '@pulse/server/schema';
import { createContext, useContext } from 'react';
import type { DemoUser } from './session.js';

/** The signed-in user and the workspace on screen, for every page below the shell. */
export interface WorkspaceContextValue {
  workspaceId: string;
  user: DemoUser;
  role: WorkspaceRole;
  /** Everyone with access to this workspace (the demo cast), online or not. */
  members: DemoUser[];
}

export const WorkspaceContext = createContext<WorkspaceContextValue | null>(null);

export function useWorkspace(): WorkspaceContextValue {
  const value = useContext(WorkspaceContext);
  if (!value) throw new Error('useWorkspace must be used inside the app shell');
  return value;
}
