import { GraphBuilder, type AttributeValue, type Dim, type ElementTypeName, type InitializerData } from '../onnx/graph-builder.js';

/**
 * A {@link GraphBuilder} whose weights and named values can be put under a
 * prefix, so the layer parts the stack-of-graphs converter builds one layer
 * per graph with (`layer-parts.ts`: they name their weights `qkv_proj.weight`,
 * `input_layernorm.weight`, …) can build every layer into one graph:
 * inside `within('model.layers.3.', …)` they become
 * `model.layers.3.qkv_proj.weight`.
 */
export class ScopedGraphBuilder extends GraphBuilder {
  private prefix = '';

  /** Runs `build` with `prefix` added to the names of the weights and named values it creates. */
  within<T>(prefix: string, build: () => T): T {
    const outer = this.prefix;
    this.prefix = outer + prefix;
    try {
      return build();
    } finally {
      this.prefix = outer;
    }
  }

  override initializer(name: string, data: InitializerData): string {
    return super.initializer(this.prefix + name, data);
  }

  override node(
    opType: string,
    inputs: readonly string[],
    options: { outputs?: readonly string[]; outputCount?: number; attributes?: Record<string, AttributeValue>; domain?: string } = {},
  ): string[] {
    if (!options.outputs || !this.prefix) return super.node(opType, inputs, options);
    return super.node(opType, inputs, { ...options, outputs: options.outputs.map((name) => this.prefix + name) });
  }

  /** Graph outputs keep the names they are given: declare them outside {@link within}. */
  override output(value: string, name: string, type: ElementTypeName, dims: readonly Dim[]): void {
    if (this.prefix) throw new Error(`ScopedGraphBuilder: declare the graph output '${name}' outside within('${this.prefix}')`);
    super.output(value, name, type, dims);
  }
}
