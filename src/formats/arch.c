/*
 * arch.c — the table of supported architectures and of their tensor names in
 * Hugging Face and llama.cpp GGUF naming. The model loader and the converter
 * both read it, so a name is written down once.
 */
#include "formats.h"

#include <stdio.h>
#include <string.h>

static const arch_info ARCHS[STEER_ARCH_COUNT] = {
    /* arch, name, gguf_arch, hf_class, hf_model_type, act, norm+1, embed√d, sandwich, qk_norm, qkv_bias, permute, tied */
    {STEER_ARCH_LLAMA, "llama", "llama", "LlamaForCausalLM", "llama", STEER_ACT_SILU, 0, 0, 0, 0, 0, 1, 0},
    {STEER_ARCH_MISTRAL, "mistral", "llama", "MistralForCausalLM", "mistral", STEER_ACT_SILU, 0, 0, 0, 0, 0, 1, 0},
    {STEER_ARCH_QWEN2, "qwen2", "qwen2", "Qwen2ForCausalLM", "qwen2", STEER_ACT_SILU, 0, 0, 0, 0, 1, 0, 0},
    {STEER_ARCH_GEMMA, "gemma", "gemma", "GemmaForCausalLM", "gemma", STEER_ACT_GELU_TANH, 1, 1, 0, 0, 0, 0, 1},
    {STEER_ARCH_GEMMA2, "gemma2", "gemma2", "Gemma2ForCausalLM", "gemma2", STEER_ACT_GELU_TANH, 1, 1, 1, 0, 0, 0, 1},
    {STEER_ARCH_GEMMA3, "gemma3", "gemma3", "Gemma3ForCausalLM", "gemma3_text", STEER_ACT_GELU_TANH, 1, 1, 1, 1, 0, 0,
     1},
};

const arch_info *arch_get(steer_arch a) { return (unsigned)a < STEER_ARCH_COUNT ? &ARCHS[a] : NULL; }

const arch_info *arch_by_gguf(const char *g)
{
    for (int i = 0; i < STEER_ARCH_COUNT; i++)
        if (g && strcmp(ARCHS[i].name, g) == 0) return &ARCHS[i];
    return NULL;
}

const arch_info *arch_by_hf(const char *cls, const char *type)
{
    for (int i = 0; i < STEER_ARCH_COUNT; i++)
        if (cls && strcmp(ARCHS[i].hf_class, cls) == 0) return &ARCHS[i];
    for (int i = 0; i < STEER_ARCH_COUNT; i++)
        if (type && strcmp(ARCHS[i].hf_model_type, type) == 0) return &ARCHS[i];
    return NULL;
}

const char *arch_supported_list(void)
{
    return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, "
           "Gemma3ForCausalLM";
}

int weight_is_layer(weight_role r) { return r >= W_ATTN_NORM && r < W_COUNT; }

int weight_is_norm(weight_role r)
{
    return r == W_OUT_NORM || r == W_ATTN_NORM || r == W_Q_NORM || r == W_K_NORM || r == W_POST_ATTN_NORM ||
           r == W_FFN_NORM || r == W_POST_FFN_NORM;
}

int arch_has_weight(const arch_info *a, weight_role r)
{
    switch (r) {
    case W_Q_BIAS: case W_K_BIAS: case W_V_BIAS: return a->qkv_bias;
    case W_Q_NORM: case W_K_NORM: return a->qk_norm;
    case W_POST_ATTN_NORM: case W_POST_FFN_NORM: return a->sandwich_norms;
    default: return 1;
    }
}

/* Names: [role] = {HF, GGUF}; "%d" is the layer. Sandwich-norm families call
 * the MLP's input norm pre_feedforward_layernorm and use
 * post_attention_layernorm for the norm after attention, while Llama-style
 * families use post_attention_layernorm for the MLP's input norm. */
static const char *const NAMES[W_COUNT][2] = {
    [W_TOK_EMBD] = {"model.embed_tokens.weight", "token_embd.weight"},
    [W_OUT_NORM] = {"model.norm.weight", "output_norm.weight"},
    [W_OUTPUT] = {"lm_head.weight", "output.weight"},
    [W_ATTN_NORM] = {"model.layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight"},
    [W_Q] = {"model.layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight"},
    [W_K] = {"model.layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight"},
    [W_V] = {"model.layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight"},
    [W_O] = {"model.layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight"},
    [W_Q_BIAS] = {"model.layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias"},
    [W_K_BIAS] = {"model.layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias"},
    [W_V_BIAS] = {"model.layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias"},
    [W_Q_NORM] = {"model.layers.%d.self_attn.q_norm.weight", "blk.%d.attn_q_norm.weight"},
    [W_K_NORM] = {"model.layers.%d.self_attn.k_norm.weight", "blk.%d.attn_k_norm.weight"},
    [W_POST_ATTN_NORM] = {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.post_attention_norm.weight"},
    [W_FFN_NORM] = {"model.layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight"},
    [W_GATE] = {"model.layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight"},
    [W_UP] = {"model.layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight"},
    [W_DOWN] = {"model.layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight"},
    [W_POST_FFN_NORM] = {"model.layers.%d.post_feedforward_layernorm.weight", "blk.%d.post_ffw_norm.weight"},
};

void arch_tensor_name(const arch_info *a, int gguf, weight_role r, int layer, char *buf, size_t n)
{
    const char *fmt = NAMES[r][gguf ? 1 : 0];
    if (!gguf && r == W_FFN_NORM && a->sandwich_norms) fmt = "model.layers.%d.pre_feedforward_layernorm.weight";
    if (weight_is_layer(r)) snprintf(buf, n, fmt, layer);
    else snprintf(buf, n, "%s", fmt);
}
