/**
 * A small walk over Amazon States Language definitions that keeps track of where each state sits
 * (top level or inside which Parallel/Map states), so tests can check properties that span
 * states: where failures lead, where waiting happens.
 */
import { type JsonObject, taskFunction } from "../../lib/workflow/definitions";

export interface ScopedState {
  name: string;
  state: JsonObject;
  /** The states of the scope this state belongs to (its siblings, itself included). */
  scope: Scope;
  /** Names of the Parallel/Map states enclosing this one, outermost first. */
  enclosing: string[];
}

export interface Scope {
  states: Record<string, JsonObject>;
  /** The Parallel/Map state whose branch this is, with its own scope; null at the top level. */
  parent: ScopedState | null;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function statesOf(container: JsonObject): Record<string, JsonObject> {
  const states = container.States;
  if (!isObject(states)) return {};
  return Object.fromEntries(
    Object.entries(states).filter((entry): entry is [string, JsonObject] => isObject(entry[1])),
  );
}

/** Every state, depth first, with its scope; branches and iterators included. */
export function scopedStates(definition: JsonObject): ScopedState[] {
  const found: ScopedState[] = [];
  const visit = (container: JsonObject, parent: ScopedState | null) => {
    const scope: Scope = { states: statesOf(container), parent };
    for (const [name, state] of Object.entries(scope.states)) {
      const here: ScopedState = {
        name,
        state,
        scope,
        enclosing: parent ? [...parent.enclosing, parent.name] : [],
      };
      found.push(here);
      const branches = Array.isArray(state.Branches) ? state.Branches : [];
      for (const branch of branches) if (isObject(branch)) visit(branch, here);
      const iterator = state.ItemProcessor ?? state.Iterator;
      if (isObject(iterator)) visit(iterator, here);
    }
  };
  visit(definition, null);
  return found;
}

export function catchers(state: JsonObject): JsonObject[] {
  return Array.isArray(state.Catch) ? state.Catch.filter(isObject) : [];
}

export function retriers(state: JsonObject): JsonObject[] {
  return Array.isArray(state.Retry) ? state.Retry.filter(isObject) : [];
}

/** The states a state may go to next without failing (Next, Choice rules, Default). */
function successors(state: JsonObject): string[] {
  const next: unknown[] = [state.Next, state.Default];
  if (Array.isArray(state.Choices)) {
    for (const rule of state.Choices) if (isObject(rule)) next.push(rule.Next);
  }
  return next.filter((n): n is string => typeof n === "string");
}

/**
 * Follows every path from each of `from`'s catchers and returns a description of each path that
 * does not end in "Task calling `recorder`, then a Fail state". A Fail inside a branch fails the
 * enclosing Parallel/Map, so such a path continues at that state's catchers; reaching Succeed or
 * an end, failing outside any branch, or going round in a circle are all problems.
 */
export function unrecordedFailurePaths(
  from: ScopedState,
  recorder: string,
  /** Catchers for exactly these errors are deliberate recoveries: their paths are not walked. */
  recoveries: readonly string[][] = [],
  /** Tasks calling these may stand between the recorder and its Fail (status notes). */
  notifiers: readonly string[] = [],
): string[] {
  const problems: string[] = [];
  const walk = (at: ScopedState, path: string[]) => {
    const label = [...at.enclosing, at.name].join("/");
    const trail = [...path, label];
    if (path.includes(label)) {
      problems.push(`${trail.join(" → ")}: goes round in a circle`);
      return;
    }
    const { state, scope } = at;
    if (state.Type === "Task" && taskFunction(state) === recorder) {
      let next = typeof state.Next === "string" ? scope.states[state.Next] : undefined;
      const seen = new Set<JsonObject>();
      while (
        next?.Type === "Task" &&
        notifiers.includes(taskFunction(next) ?? "") &&
        !seen.has(next) &&
        // A notifier must reach the same place whether it succeeds or not.
        catchers(next).every((c) => c.Next === next?.Next)
      ) {
        seen.add(next);
        next = typeof next.Next === "string" ? scope.states[next.Next] : undefined;
      }
      if (next?.Type !== "Fail") {
        problems.push(`${trail.join(" → ")}: ${recorder} is not followed by a Fail state`);
      }
      return;
    }
    if (state.Type === "Fail") {
      const parent = scope.parent;
      const onFailure = parent ? catchers(parent.state) : [];
      if (!parent || onFailure.length === 0) {
        problems.push(`${trail.join(" → ")}: fails without recording the failure`);
        return;
      }
      for (const catcher of onFailure) {
        const target = typeof catcher.Next === "string" ? catcher.Next : "";
        walkTo(parent.scope, target, trail);
      }
      return;
    }
    if (state.Type === "Succeed" || state.End === true) {
      problems.push(`${trail.join(" → ")}: ends without recording the failure`);
      return;
    }
    const next = successors(state);
    if (next.length === 0) problems.push(`${trail.join(" → ")}: leads nowhere`);
    for (const name of next) walkTo(scope, name, trail);
  };
  const walkTo = (scope: Scope, name: string, path: string[]) => {
    const state = scope.states[name];
    if (!state) {
      problems.push(`${path.join(" → ")} → ${name}: no such state`);
      return;
    }
    const parent = scope.parent;
    walk({ name, state, scope, enclosing: parent ? [...parent.enclosing, parent.name] : [] }, path);
  };
  const label = [...from.enclosing, from.name].join("/");
  for (const catcher of catchers(from.state)) {
    const errors = Array.isArray(catcher.ErrorEquals) ? catcher.ErrorEquals.map(String) : [];
    if (recoveries.some((r) => r.length === errors.length && r.every((e) => errors.includes(e)))) {
      continue;
    }
    walkTo(from.scope, typeof catcher.Next === "string" ? catcher.Next : "", [`${label} (caught)`]);
  }
  return problems;
}

/**
 * A circle in the transitions of one scope (Next, Choice rules, Default and Catch targets), as
 * the state names along it, or null when there is none: a workflow with no circle cannot loop
 * with time, whatever it waits for.
 */
export function transitionCycle(scopeStates: Record<string, JsonObject>): string[] | null {
  const targets = (state: JsonObject): string[] => [
    ...successors(state),
    ...catchers(state)
      .map((c) => c.Next)
      .filter((n): n is string => typeof n === "string"),
  ];
  const done = new Set<string>();
  const visit = (name: string, path: string[]): string[] | null => {
    if (path.includes(name)) return [...path.slice(path.indexOf(name)), name];
    if (done.has(name)) return null;
    const state = scopeStates[name];
    if (!state) return null;
    for (const next of targets(state)) {
      const found = visit(next, [...path, name]);
      if (found) return found;
    }
    done.add(name);
    return null;
  };
  for (const name of Object.keys(scopeStates)) {
    const found = visit(name, []);
    if (found) return found;
  }
  return null;
}
