/**
 * The parts of OpenAI responses and chunks the tests read (and skipgen's
 * extensions), typed as present: the tests assert what they read.
 */
export interface Choice {
  index: number;
  text: string;
  message: { role: string; content: string };
  delta: { role?: string; content?: string };
  logprobs: null;
  finish_reason: string | null;
  token_ids?: number[];
}

export interface SkipField {
  policy: string;
  parameters: Record<string, unknown>;
  layers_per_token: number;
  num_layers: number;
  layer_speedup: number;
}

export interface ResponseBody {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: [Choice, ...Choice[]];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  skip: SkipField;
  timing: { prompt_ms: number; decode_ms: number; tokens_per_second: number };
  error?: { message: string; type: string; param: string | null; code: string | null };
}

/** The JSON body of a response, as a {@link ResponseBody}. */
export async function bodyOf(response: Response | Promise<Response>): Promise<ResponseBody> {
  return (await (await response).json()) as ResponseBody;
}
