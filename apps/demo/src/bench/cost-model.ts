import type { EngineCounters } from '@skipgen/core';

/** Milliseconds per decode step of each part of the model, at one batch size. */
export interface CostModel {
  layerMs: number;
  headMs: number;
  embedMs: number;
}

/**
 * Per-step costs measured in a full-depth run: what one layer, the head and
 * the embedding cost on their own, each session call's overhead included
 * (medians over the steps).
 */
export function costModelFrom(steps: readonly EngineCounters[]): CostModel {
  return {
    layerMs: median(steps.map((w) => w.layerMs / w.layerRuns)),
    headMs: median(steps.map((w) => w.headMs / w.headRuns)),
    embedMs: median(steps.map((w) => w.embedMs / w.embedRuns)),
  };
}

/**
 * The speedup a policy would reach if a step cost nothing but its layers,
 * one head and one embedding: the ceiling real speedups are judged against.
 */
export function idealSpeedup(cost: CostModel, numLayers: number, layersPerToken: number): number {
  const fixed = cost.headMs + cost.embedMs;
  return (numLayers * cost.layerMs + fixed) / (layersPerToken * cost.layerMs + fixed);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
