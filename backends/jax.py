"""JAX: `jax.numpy` is an array-API namespace; `compile` jits the training step.

float64 needs JAX's x64 mode, which is process-wide: this backend turns it on
when it is set up, and passes an explicit dtype everywhere so float32 work is
unaffected. It also asks for full-precision float32 matrix products (unless
the process already chose a precision), since JAX takes TF32 on GPUs.
"""

from __future__ import annotations

from mlp_backends.backend import Backend, Probe


class JaxBackend(Backend):
    """JAX on its default device (a GPU or TPU when present); steps are jitted."""

    name = "jax"
    priority = 40
    gpu_drivers = ("nvidia", "rocm", "tpu", "metal")

    @classmethod
    def probe(cls) -> Probe:
        try:
            import jax
            import jax.numpy as jnp
        except ImportError as exc:
            return Probe(False, f"not installed ({exc}); pip install 'mlp-backends[jax]'")
        devices = jax.devices()
        x = jnp.arange(4.0)
        if float(jnp.sum(x * x)) != 14.0:
            return Probe(False, "jax computed 0+1+4+9 wrongly")
        is_gpu = any(d.platform == "gpu" or d.platform == "cuda" for d in devices)
        return Probe(True, devices=tuple(f"{d.platform}:{d.id}" for d in devices),
                     version=jax.__version__, is_gpu=is_gpu)

    def _setup(self, device):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        if jax.config.jax_default_matmul_precision is None:
            # Full float32 products on GPUs too (JAX would take TF32 there); TF32 is opt-in.
            jax.config.update("jax_default_matmul_precision", "highest")
        if device is None:
            return jnp, jax.devices()[0]
        platform, _, index = device.partition(":")
        return jnp, jax.devices(platform)[int(index or 0)]

    @property
    def is_gpu(self) -> bool:
        """Whether the device is a GPU."""
        return self.device.platform in ("gpu", "cuda")

    def asarray(self, host, dtype=None):
        import jax
        import numpy as np

        host = np.asarray(host)
        if dtype is not None:
            host = host.astype(dtype, copy=False)
        return jax.device_put(host, self.device)

    def to_numpy(self, x):
        import numpy as np

        return np.asarray(x)

    def synchronize(self) -> None:
        import jax

        jax.effects_barrier()

    def thread_knob(self):
        # XLA sizes its CPU thread pool once, when JAX starts; it cannot change per run.
        return None

    def memory_stats(self):
        stats = self.device.memory_stats() if self.is_gpu else None
        if not stats:
            return None
        return {"in_use_bytes": stats.get("bytes_in_use", 0),
                "peak_bytes": stats.get("peak_bytes_in_use", stats.get("bytes_in_use", 0))}

    # Buffer donation in compile: None means on a GPU only. There memory is short and the
    # device-side check of each batch costs little; on the CPU, donation and the check
    # cost 11 to 17% of an mnist step (benchmarks/memory_savers.py) to save host memory.
    donate: bool | None = None

    def compile_other(self, fn):
        """`jax.jit` of a step that make_step did not make."""
        import jax

        return jax.jit(fn)

    def compile_step(self, step):
        """`jax.jit` of the step, with `.epoch`: the whole epoch as one program
        (backends/jax_epoch.py). Both are made once per backend and step settings
        (optimizer, activation, L2), so later fit and partial_fit calls reuse
        what XLA compiled. Where `donate` says so, a training step from make_step
        (with optim.py's update) also gives its parameters and optimizer state to XLA to
        reuse, so training holds one set of them, not the old and the new; a bad batch
        is then dropped on the device (train.SkipNonFinite), since nothing older is kept."""
        import jax

        from mlp_backends.step import SkipNonFinite, step_key

        rebuild = step.rebuild
        config = step.config
        donate = self.is_gpu if self.donate is None else self.donate
        plain = config.get("update") is None and config.get("kern") is None
        key = (*step_key(config), donate) if plain else None
        cache = self.__dict__.setdefault("_programs", {})
        if key in cache:
            return cache[key]
        if donate and config.get("update") is None:
            step = rebuild(update=SkipNonFinite(config["xp"], config["optimizer"]))
        jitted = jax.jit(step.fn, donate_argnums=(0, 1) if donate else ())

        from backends.jax_epoch import epoch_program

        compiled = step.wrapping(jitted, mutates_params=donate or step.mutates_params)
        compiled.epoch = epoch_program(step, donate)
        if key is not None:
            cache[key] = compiled
        return compiled
