import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX element types the converter emits. */
export const ElementType = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  uint8: onnx.TensorProto.DataType.UINT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
} as const;
export type ElementTypeName = keyof typeof ElementType;

/** A dimension: a fixed size or a symbolic name such as `batch`. */
export type Dim = number | string;

export type AttributeValue = number | string | number[] | { float: number } | { floats: number[] };

/** Weights of one initializer, already in the element type they are stored as. */
export interface InitializerData {
  type: 'float32' | 'float16' | 'uint8' | 'int64';
  dims: readonly number[];
  /** Little-endian bytes of the tensor, in row-major order. */
  bytes: Uint8Array;
}

/** Where a graph's weights go when they are too large to sit inside the protobuf. */
export interface ExternalDataTarget {
  /** File name, relative to the .onnx file, that receives the raw weights. */
  location: string;
  /** Receives each tensor's bytes in order; returns the offset it was written at. */
  append(bytes: Uint8Array): number;
}

const OPSETS = [
  { domain: '', version: 17 },
  { domain: 'com.microsoft', version: 1 },
];

/**
 * Builds one ONNX graph node by node. The converter describes each graph
 * (embedding, one decoder layer, head) with this builder instead of exporting
 * from a framework, so every op and every input name is chosen on purpose.
 */
export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly initializers: { name: string; data: InitializerData }[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(private readonly graphName: string) {}

  /** Declares a graph input and returns its name. */
  input(name: string, type: ElementTypeName, dims: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares `value` (an existing value name) as a graph output called `name`. */
  output(value: string, name: string, type: ElementTypeName, dims: readonly Dim[]): void {
    if (value !== name) this.node('Identity', [value], { outputs: [name] });
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** Adds a constant weight and returns the value name to use it by. */
  initializer(name: string, data: InitializerData): string {
    this.claim(name);
    this.initializers.push({ name, data });
    return name;
  }

  /** An int64 constant, for shapes and axes. */
  int64(name: string, values: readonly number[]): string {
    const array = BigInt64Array.from(values, (v) => BigInt(v));
    const unique = this.fresh(name);
    this.initializers.push({ name: unique, data: { type: 'int64', dims: [values.length], bytes: new Uint8Array(array.buffer) } });
    return unique;
  }

  /**
   * Adds a node and returns its output names. `outputs` may name them;
   * otherwise `outputCount` fresh names are made from the op type, except at
   * the positions in `omit`: optional outputs left out (named '', as ONNX
   * marks them), which the op then need not compute.
   */
  node(
    opType: string,
    inputs: readonly string[],
    options: {
      outputs?: readonly string[];
      outputCount?: number;
      omit?: readonly number[];
      attributes?: Record<string, AttributeValue>;
      domain?: string;
    } = {},
  ): string[] {
    const outputs =
      options.outputs?.map((n) => this.claim(n)) ??
      Array.from({ length: options.outputCount ?? 1 }, (_, i) => (options.omit?.includes(i) ? '' : this.fresh(opType.toLowerCase())));
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        domain: options.domain ?? '',
        name: `${opType}_${this.nodes.length}`,
        input: [...inputs],
        output: outputs,
        attribute: Object.entries(options.attributes ?? {}).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outputs;
  }

  /** Convenience for single-output nodes. */
  op(opType: string, inputs: readonly string[], attributes?: Record<string, AttributeValue>, domain?: string): string {
    return this.node(opType, inputs, { attributes, domain })[0]!;
  }

  /** Total bytes of all initializers. */
  get weightBytes(): number {
    return this.initializers.reduce((sum, i) => sum + i.data.bytes.byteLength, 0);
  }

  /**
   * Serialises the model. With `external`, weights are appended to that file
   * and referenced by offset; otherwise they sit inside the protobuf.
   */
  toBytes(external?: ExternalDataTarget): Uint8Array {
    const initializer = this.initializers.map(({ name, data }) => {
      const tensor = onnx.TensorProto.create({ name, dataType: ElementType[data.type], dims: [...data.dims] });
      if (external) {
        const offset = external.append(data.bytes);
        tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
        tensor.externalData = [
          { key: 'location', value: external.location },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(data.bytes.byteLength) },
        ];
      } else {
        tensor.rawData = data.bytes;
      }
      return tensor;
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'skipgen',
      opsetImport: OPSETS,
      graph: onnx.GraphProto.create({
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`GraphBuilder: the value name '${name}' is used twice`);
    this.names.add(name);
    return name;
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return this.claim(name);
  }
}

function valueInfo(name: string, type: ElementTypeName, dims: readonly Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: ElementType[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, value: AttributeValue) {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return onnx.AttributeProto.create({ name, type: AttributeType.INT, i: value });
  }
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({ name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });
  }
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: AttributeType.INTS, ints: value });
  if ('float' in value) return onnx.AttributeProto.create({ name, type: AttributeType.FLOAT, f: value.float });
  return onnx.AttributeProto.create({ name, type: AttributeType.FLOATS, floats: value.floats });
}
