"""skip-aware training for skipgen: a Llama decoder whose forward is what skipgen's graphs compute."""
