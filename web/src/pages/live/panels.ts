// The live viewer's panel layout: which sensors each chart shows, in which order. Pure
// functions (tested) plus persistence per project in localStorage.

export interface Panel {
  id: string;
  sensorIds: string[];
}

let counter = 0;
export function newPanel(sensorIds: string[] = []): Panel {
  counter += 1;
  return { id: `p${Date.now().toString(36)}${counter}`, sensorIds };
}

/** Moves the panel `fromId` to where `toId` is (drag and drop), keeping the others' order. */
export function movePanel(panels: readonly Panel[], fromId: string, toId: string): Panel[] {
  const from = panels.findIndex((p) => p.id === fromId);
  const to = panels.findIndex((p) => p.id === toId);
  if (from < 0 || to < 0 || from === to) return [...panels];
  const next = [...panels];
  const [moved] = next.splice(from, 1);
  next.splice(to, 0, moved!);
  return next;
}

/** Moves a panel one place up (-1) or down (+1): the keyboard way to reorder. */
export function shiftPanel(panels: readonly Panel[], id: string, by: -1 | 1): Panel[] {
  const index = panels.findIndex((p) => p.id === id);
  const target = index + by;
  if (index < 0 || target < 0 || target >= panels.length) return [...panels];
  return movePanel(panels, id, panels[target]!.id);
}

export function toggleSensor(panel: Panel, sensorId: string): Panel {
  return panel.sensorIds.includes(sensorId)
    ? { ...panel, sensorIds: panel.sensorIds.filter((s) => s !== sensorId) }
    : { ...panel, sensorIds: [...panel.sensorIds, sensorId] };
}

/** Every sensor any panel shows, once: what the one live stream subscribes to. */
export function sensorUnion(panels: readonly Panel[]): string[] {
  return [...new Set(panels.flatMap((p) => p.sensorIds))].sort();
}

/** Panels restricted to sensors that still exist. */
export function pruneSensors(panels: readonly Panel[], known: ReadonlySet<string>): Panel[] {
  return panels.map((p) => ({ ...p, sensorIds: p.sensorIds.filter((s) => known.has(s)) }));
}

const key = (projectId: string) => `etp.live.panels.${projectId}`;

export function loadPanels(projectId: string): Panel[] | null {
  try {
    const raw = window.localStorage.getItem(key(projectId));
    if (!raw) return null;
    const value = JSON.parse(raw) as unknown;
    if (!Array.isArray(value)) return null;
    return value.filter(
      (p): p is Panel => typeof p?.id === "string" && Array.isArray(p?.sensorIds) && p.sensorIds.every((s: unknown) => typeof s === "string"),
    );
  } catch {
    return null;
  }
}

export function savePanels(projectId: string, panels: readonly Panel[]): void {
  try {
    window.localStorage.setItem(key(projectId), JSON.stringify(panels));
  } catch {
    // the layout is just not remembered
  }
}
