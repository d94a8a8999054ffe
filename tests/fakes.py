"""Shared builders for unit tests: a tiny model that needs no download, and fake Redis state.

Nothing here talks to the network or to a real Redis: the tokenizer is trained in memory, the
model is a random-init Llama a few kilobytes large, and Redis is ``fakeredis`` (with Lua, so the
job store's scripts run for real).
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import fakeredis
import torch
from pydantic_settings import BaseSettings
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from rq import Queue
from rq.serializers import JSONSerializer
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from config.settings import Settings
from engine.adapters import adapter_for
from engine.loading import LoadedModel
from engine.registry import ModelRegistry
from jobs.directory import WorkerDirectory
from jobs.reader import AsyncJobReader
from jobs.store import JobStore
from jobs.submission import JobSubmitter
from ops.outputs import reconciler
from service.state import AppState
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

TINY_MODEL = "tiny"
EOS = "<|eos|>"
PAD = "<|pad|>"

CORPUS = [
    "The capital of France is Paris.",
    "The quick brown fox jumps over the lazy dog.",
    "Transformers are neural networks built from attention and MLP blocks.",
    "Interpretability asks what a model computes, and how.",
    "One, two, three, four, five, six, seven, eight, nine, ten.",
]


@functools.cache
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained in memory: it encodes any text, offline."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)


@functools.cache
def tiny_lm(name: str = TINY_MODEL) -> LoadedModel:
    """A random-init two-layer Llama over `tiny_tokenizer`, frozen, in eval mode (built once).

    Its only stop token is the tokenizer's EOS, so generation tests know exactly what ends a run.
    """
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(name=name, source=f"test:{name}", model=model, tokenizer=tokenizer,
                       adapter=adapter_for(model))


@functools.cache
def tiny_gpt2_lm(name: str = "tiny-gpt2") -> LoadedModel:
    """A random-init two-layer GPT-2 (Conv1D weights, learned positions) over `tiny_tokenizer`."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(1)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
                        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(name=name, source=f"test:{name}", model=model, tokenizer=tokenizer,
                       adapter=adapter_for(model))


@functools.cache
def tiny_registry() -> ModelRegistry:
    """One registry per test process: its runtime's hooks are installed on the shared tiny model once."""
    return ModelRegistry({TINY_MODEL: tiny_lm()})


class IsolatedSettings(Settings):
    """`Settings` that read only their arguments: no ``INTERP_*`` variable leaks into a test."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any,
                                   *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return (init_settings,)


def tiny_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings naming only the tiny model, with every path under ``tmp_path``."""
    values: dict[str, Any] = {
        "models": {TINY_MODEL: f"test:{TINY_MODEL}"},
        "redis_url": "redis://fake",
        "data_dir": tmp_path,
        "api_load_models": False,
        "device": "cpu",
        "dtype": "float32",
        # A fake worker beats once, when the test registers it, and the app's reaper fails the jobs
        # of workers whose beat expired: at the default 10 s a slow job on a loaded machine was failed.
        "worker_heartbeat_ttl_seconds": 3600,
        **overrides,
    }
    return IsolatedSettings(**values)


def fake_clients() -> tuple[Redis, Redis]:
    """A decoded client (job store) and a raw client (RQ) over one fake Redis server."""
    server = fakeredis.FakeServer()
    return (fakeredis.FakeRedis(server=server, decode_responses=True),
            fakeredis.FakeRedis(server=server))


def async_twin(client: Redis) -> AsyncRedis:
    """An asyncio client reaching the same (fake or real) server as ``client``."""
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("server") is not None:
        return fakeredis.FakeAsyncRedis(server=kwargs["server"], decode_responses=True)
    return AsyncRedis(host=kwargs["host"], port=kwargs["port"], decode_responses=True,
                      socket_connect_timeout=kwargs.get("socket_connect_timeout"),
                      socket_timeout=kwargs.get("socket_timeout"), retry=AsyncRetry(NoBackoff(), 0))


def app_state(settings: Settings, registry: ModelRegistry, redis: Redis, rq_redis: Redis) -> AppState:
    """An `AppState` over given clients, wired like `AppState.build` wires it."""
    store = JobStore(redis, ttl_seconds=settings.job_ttl_seconds, reconcile=reconciler(settings))
    return AppState(
        settings=settings,
        registry=registry,
        redis=redis,
        rq_redis=rq_redis,
        store=store,
        submitter=JobSubmitter(rq_redis, store, job_timeout=settings.job_timeout_seconds),
        directory=WorkerDirectory(redis, ttl_seconds=settings.worker_heartbeat_ttl_seconds),
        reader=AsyncJobReader(async_twin(redis), ttl_seconds=settings.job_ttl_seconds,
                              reconcile=reconciler(settings)),
    )


def beat(directory: WorkerDirectory, worker: str = "worker-1", models: tuple[str, ...] = (TINY_MODEL,)) -> None:
    """Register a live worker for ``models``, as a worker's heartbeat thread would."""
    directory.beat(worker, {"name": worker, "pid": 1, "host": "test", "time": time.time(),
                            "models": {m: {"architecture": "llama"} for m in models}})


def queued_job(store: JobStore, *, model: str = TINY_MODEL, kind: str = "score",
               payload: dict[str, Any] | None = None) -> str:
    """Write a queued job record directly (no RQ message) and return its id."""
    from jobs.record import new_job_id
    from jobs.submission import hash_request

    job_id = new_job_id()
    mapping: dict[Any, Any] = store.initial_mapping(job_id, kind, model, hash_request(kind, model, payload or {}))
    store.redis.hset(store.key(job_id), mapping=mapping)
    store.redis.expire(store.key(job_id), store.ttl_seconds)
    return job_id


def dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def run_enqueued(state: AppState, job_id: str, registry: ModelRegistry | None = None) -> None:
    """Run a submitted job exactly as RQ would hand it to a worker: the enqueued arguments.

    Args:
        state: the API's state (its Redis, settings and job store are the worker's too).
        job_id: the job.
        registry: the worker's models; the API's by default.
    """
    model = state.store.get(job_id).model  # type: ignore[union-attr]
    queue = Queue(state.settings.queue_name(model), connection=state.rq_redis, serializer=JSONSerializer)
    (args,) = [job.args for job in queue.jobs if job.args[0] == job_id]
    worker = WorkerRuntime(settings=state.settings, registry=registry or state.registry, store=state.store,
                           worker_name="worker-1")
    run_job(worker, *args)
