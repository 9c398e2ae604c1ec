"""dnac.search: the co-search front-end (supernet, precision search, co-search loop).

    ops.py         OPS registry: FBNet candidates ("k3_e6" -> inverted residual block, "skip")
    space.py       StageSpec / SearchSpace: the FBNet space, CIFAR strides [1, 1, 2, 2, 1, 2, 1]
    precision.py   quantizers with straight-through gradients; heterogeneous sampling (TRIPS Eq. 4)
    sampling.py    SamplingMode: single-path forward + top-K backward (TRIPS), soft all paths (DNA)
    supernet.py    Supernet: arch_parameters() / weight_parameters(), sample(), derive() -> Genotype
    genotype.py    Genotype -> Workload (for DAS and `dnac build`) and model.yaml
    hw_penalty.py  per-candidate hardware costs on DAS accelerators (DNA Eq. 4-5, TRIPS Eq. 8)
    cosearch.py    the co-search loop (DNA Alg. 1), checkpoints and resume, search_log.json
    distributed.py data-parallel search over torch.distributed (torchrun; gloo / NCCL)
    config.py      SearchConfig dataclasses, validation, presets (presets/*.yaml)
    data.py        datasets from installed files (Fashion-MNIST, MNIST, digits, CIFAR, folders)
    train.py       `dnac train`: quantization-aware training of a derived network
    bench.py       `dnac bench search`: memory, penalty overhead, co-search quality
    cli.py         the click commands `search`, `train` and `bench_search`
"""
