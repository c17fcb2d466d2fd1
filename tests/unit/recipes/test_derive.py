"""Deriving the service tables: comment limits, the hub's resolution rules, a whole (synthetic) checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from novaflow.errors import ConfigError
from novaflow.recipes import derive, hyperpod_derive
from novaflow.recipes.derive import (
    derive_tables,
    documented_limits,
    dump_table,
    load_recipe_yaml,
    open_checkout,
    recipe_comments,
    resolve_parameters,
)
from novaflow.recipes.gotemplate import render
from novaflow.recipes.published import load_published, parse_tables

ROOT = Path(__file__).parents[3]
MIRROR = Path("/work/.mirror/aws+sagemaker-hyperpod-recipes/repo")


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("Global batch size, allowed values are 16, 32, 64", {"enum": [16, 32, 64]}),
        ("Number of compute instances for training, allowed value is 1", {"enum": [1]}),
        ("Scaling factor for LoRA weights. Allowed values are 32, 64 and 96", {"enum": [32, 64, 96]}),
        ("Total samples per step. Limits: {16, 32, 64, 128}", {"enum": [16, 32, 64, 128]}),
        ("Number of compute instances. All supported values: {2, 4, 8, 16}", {"enum": [2, 4, 8, 16]}),
        ("Sequence length (options: 8192, 16384, 32768 [default], 65536)", {"enum": [8192, 16384, 32768, 65536]}),
        ("Total samples per optimizer step across all replicas (16/32/64/128/256).", {"enum": [16, 32, 64, 128, 256]}),
        ("Dropout, must be between 0.0 and 1.0", {"min": 0.0, "max": 1.0}),
        ("Dropout for hidden states. Limits: [0.0, 1.0]", {"min": 0.0, "max": 1.0}),
        ("LoRA+ learning rate scaling factor (1.0–70.0)", {"min": 1.0, "max": 70.0}),
        ("Change to a value between (0,20] to enable", {"min": 0, "max": 20}),
        ("Maximum training steps. Minimal is 4.", {"min": 4}),
        (
            "Maximum context window size (tokens). Should be between [1024, 8192] and multiple of 1024.",
            {"min": 1024, "max": 8192, "multiple_of": 1024},
        ),
        (
            "Context. For p5 instance type should be between [1024, 32768] and multiple of 1024. "
            "For p4d instance type should be between [1024, 16384] and multiple of 1024.",
            {"by_family": {"p5": {"min": 1024, "max": 32768}, "p4d": {"min": 1024, "max": 16384}}, "multiple_of": 1024},
        ),
        ("Enable reasoning, options are low/high", {"words": ["low", "high"]}),
        ("Learning rate", {}),
        ("Cap on tokens generated per sample", {}),
    ],
)
def test_documented_limits_read_the_phrasings_recipes_use(comment: str, expected: dict) -> None:
    assert documented_limits(comment) == expected


def test_recipe_comments_follow_nesting_and_continuation_lines() -> None:
    text = (
        "run:\n"
        "  name: x   # a run name\n"
        "training_config:\n"
        "  max_length: 8192   # first half.\n"
        "                     # second half.\n"
        "  nested:\n"
        "    lr: 1e-5         # Learning rate\n"
        "\n"
        "  other: 'a # not a comment'\n"
    )
    assert recipe_comments(text) == {
        "run.name": "a run name",
        "training_config.max_length": "first half. second half.",
        "training_config.nested.lr": "Learning rate",
    }


def test_recipe_yaml_reads_exponents_as_floats_like_the_container() -> None:
    data = load_recipe_yaml("a: 1e-5\nb: 5e-07\nc: 1.0e-3\nd: '1e-5'\ne: 10\n")
    assert data == {"a": 1e-05, "b": 5e-07, "c": 0.001, "d": "1e-5", "e": 10}
    assert isinstance(data["a"], float) and isinstance(data["e"], int)


def test_resolution_uses_the_recipe_value_conditions_and_the_batch_ladder() -> None:
    params = {
        "learning_rate": {"type": "float", "required": True, "min": 0, "max": 1, "default": 1e-5, "description": "x"},
        "global_batch_size": {"type": "integer", "required": True, "enum": [16, 32, 64], "default": 64},
        "replicas": {
            "type": "integer",
            "required": True,
            "enum": [1],
            "default": 1,
            "conditional_constraints": {
                "enum": {"Name": {"model_a_recipe": [2, 4], "default": [1]}},
                "default": {"Name": {"model_a_recipe": 2, "default": 1}},
            },
        },
        "save_steps": {"type": "integer", "required": True, "min": 0, "max": 10, "default": 3},
        "namespace": {"type": "string", "required": True, "default": "kubeflow"},
        "max_context_length": {"type": "integer", "required": True, "min": 1, "max": 9, "default": 8},
    }
    template = {
        "run": {"replicas": "{{replicas}}"},
        "training_config": {
            "lr": "{{learning_rate}}",
            "global_batch_size": "{{global_batch_size}}",
            "save_steps": "{{save_steps}}",
        },
    }
    recipe = {
        "run": {"replicas": 8},
        "training_config": {
            "lr": 5e-6,
            "global_batch_size": 32,
            "max_steps": 7,
            "save_steps": "${oc.select:training_config.max_steps}",
        },
    }
    out = resolve_parameters(params, template, recipe, {"Name": "model_a_recipe_v1", "Model_ID": "m"})
    assert out["learning_rate"] == {
        "type": "float",
        "required": True,
        "min": 0,
        "max": 1,
        "default": 5e-6,
        "paths": ["training_config.lr"],
    }
    assert out["global_batch_size"]["enum"] == [32, 64, 128, 256, 512, 1024]
    assert out["global_batch_size"]["default"] == 32
    assert (out["replicas"]["enum"], out["replicas"]["default"]) == ([2, 4], 2)
    assert out["save_steps"]["default"] == 7
    assert out["max_context_length"]["paths"] == []
    assert "namespace" not in out
    other = resolve_parameters(params, template, recipe, {"Name": "model_b_recipe", "Model_ID": "m"})
    assert (other["replicas"]["enum"], other["replicas"]["default"]) == ([1], 1)


def _write(root: Path, path: str, content: object) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")


def _synthetic_checkout(root: Path) -> Path:
    """A two-recipe checkout in the repository's layout (values invented for the test)."""
    params = {
        "templates": {
            "nova_lora_sft_2_0": {
                "recipe_template": {"training_config": {"optim_config": {"lr": "{{learning_rate}}"}}},
                "recipe_override_parameters": {
                    "learning_rate": {"type": "float", "required": True, "min": 0, "max": 0.5, "default": 0.1}
                },
            }
        }
    }
    _write(root, derive.PARAMETERS_FILE, params)
    _write(
        root,
        derive.METADATA_FILE,
        {
            "nova_lite_2_0_p5_gpu_lora_sft": {"display_name": "SFT", "instance_types": ["ml.p5.48xlarge"]},
            "nova_lite_2_0_p5_48xl_gpu_rft_eval": {
                "display_name": "RFT Evaluation",
                "instance_types": ["ml.p5.48xlarge"],
            },
            "nova_lite_1_0_p5_gpu_ppo": {"display_name": "PPO", "instance_types": ["ml.p5.48xlarge"]},
        },
    )
    image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-V2-latest"
    _write(
        root,
        derive.REGIONAL_FILE,
        {
            "all": {"hosting": {"container_image": {"prod": {"us-east-1": "inference-image"}, "gamma": {"x": "y"}}}},
            "nova_lite_2_0_p5_gpu_lora_sft": {
                "sm_jobs": {
                    "container_image": {"prod": {"us-east-1": image}, "gamma": {"us-east-1": "internal"}},
                    "serverless_sku": {"prod": {"us-east-1": "USE1", "eu-west-1": "EU"}},
                }
            },
        },
    )
    _write(root, derive.MODEL_ID_FILE, {"amazon.nova-2-lite-v1:0:256k": "nova-textgeneration-lite-v2"})
    _write(
        root,
        derive.UNSUPPORTED_FILE,
        {"nova": ["recipes_collection/recipes/evaluation/nova/nova_2_0/nova_lite_2_0_p5_48xl_gpu_rft_eval.yaml"]},
    )
    _write(
        root,
        "recipes_collection/recipes/fine-tuning/nova/nova_2_0/nova_lite_2_0_p5_gpu_lora_sft.yaml",
        "run:\n  model_type: amazon.nova-2-lite-v1:0:256k\n  replicas: 4  # allowed values are 4, 8\n"
        "training_config:\n  optim_config:\n    lr: 2e-5   # Learning rate\n",
    )
    _write(
        root,
        "recipes_collection/recipes/evaluation/nova/nova_2_0/nova_lite_2_0_p5_48xl_gpu_rft_eval.yaml",
        "run:\n  model_type: amazon.nova-2-lite-v1:0:256k\n  replicas: 1\nevaluation:\n  task: rft_eval\n",
    )
    _write(
        root,
        "recipes_collection/recipes/fine-tuning/nova/nova_1_0/nova_lite_1_0_p5_gpu_ppo.yaml",
        "run:\n  model_type: amazon.nova-lite-v1:0:300k\n",
    )
    _write_chart(root)
    return root


def _write_chart(root: Path) -> None:
    """A small chart in the hub's layout (written for the test): one job, a config map, the launcher's tables."""
    _write(
        root,
        hyperpod_derive.VALUES_FILE,
        "image:\n  trainingImage: x\ntrainingConfig:\n  jobName: nil\n  devices: null\n  numEFADevices: 32\n"
        "  lambdaAccess: false\n  worker_nodes: 0\n  processed_worker_nodes: 0\n  initContainer:\n    image: null\n",
    )
    _write(
        root,
        hyperpod_derive.JOB_TEMPLATE,
        "{{ $c := .Values.trainingConfig }}\nkind: PyTorchJob\nmetadata:\n  name: {{ $c.jobName }}\n"
        "  namespace: {{ $c.namespace }}\n  labels:\n    {{- range $k, $v := $c.customLabels }}\n"
        "    {{ $k | quote }}: {{ $v | quote }}\n    {{- end }}\nspec:\n  master:\n"
        "    image: {{ .Values.image.trainingImage }}\n"
        "    gpus: {{ $c.devices }}\n    {{- if $c.lambdaAccess }}\n    hostNetwork: true\n    {{- end }}\n"
        "  {{- if gt (int (default 0 $c.worker_nodes)) 0 }}\n  worker:\n"
        "    replicas: {{ $c.processed_worker_nodes }}\n"
        "  {{- end }}\n",
    )
    _write(
        root,
        hyperpod_derive.CONFIG_TEMPLATE,
        '{{ $c := .Values.trainingConfig }}\n{{- $f := .Files.Get (printf "config/%s.yaml" $c.jobName) }}\n'
        "kind: ConfigMap\nmetadata:\n  name: cfg-{{ $c.jobName }}\ndata:\n  config.yaml: |-\n{{ $f | indent 4 }}\n",
    )
    _write(root, hyperpod_derive.LAUNCHER_FILE, "# launcher\n")
    _write_rft_chart(root)
    _write(
        root,
        hyperpod_derive.EFA_FILE,
        'efa_supported_instance = set(["p5.48xlarge"])\ninstanceWithMultipleEFAs = {"p5.48xlarge": 32}\n'
        'INSTANCE_TO_DEVICE_COUNT = {"g5.12xlarge": 4}\n',
    )


RFT_VALUES = """\
image: {trainingImage: null, stormImage: null, generationImage: null, natsServerImage: null,
  natsReloaderImage: null, redis: null}
trainingConfig:
  namespace: x
  customLabels: null
  initContainer: {image: null}
  training:
    replicas: 2
    worker_replicas: 1
    resources:
      master: {requests: {nvidia.com/gpu: "8"}, limits: {nvidia.com/gpu: "8"}}
      worker: {requests: {nvidia.com/gpu: "8"}, limits: {nvidia.com/gpu: "8"}}
  vllmGeneration: {replicas: 3, resources: {requests: {}, limits: {}}}
  hub: {replicas: 1}
  prompter: {replicas: 1}
  rbs: {replicas: 1}
  natsServer: {replicas: 3}
  redis: {enabled: false}
jobList: []
"""
RFT_TEMPLATES = {
    "training.yaml": "{{ $c := .Values.trainingConfig }}\nkind: PyTorchJob\nmetadata:\n  name: {{ $c.jobName }}\n"
    "spec:\n  workers: {{ $c.training.worker_replicas }}\n  efa: {{ index $c.training.resources.master.limits "
    '"vpc.amazonaws.com/efa" }}\n  account: {{ $c.serviceAccountName }}\n',
    "vllm-generation.yaml": "kind: StatefulSet\nmetadata:\n  name: {{ .Values.trainingConfig.jobName }}-vllm\n"
    "spec:\n  replicas: {{ .Values.trainingConfig.vllmGeneration.replicas }}\n"
    "  image: {{ .Values.image.generationImage }}\n",
    "hub.yaml": "kind: Deployment\nmetadata:\n  name: {{ .Values.trainingConfig.jobName }}-hubcli\n"
    "  {{- with .Values.trainingConfig.customLabels }}\n  labels:\n    {{- toYaml . | nindent 4 }}\n"
    '  {{- end }}\n  annotations:\n    worker_replicas: "{{ .Values.trainingConfig.hub.replicas }}"\n'
    "spec:\n  replicas: {{ .Values.trainingConfig.hub.replicas }}\n",
    "prompt-rbs.yaml": "kind: Job\nmetadata:\n  name: {{ .Values.trainingConfig.jobName }}-rbs\n",
    "nats-server.yaml": "kind: Secret\nmetadata:\n  name: {{ .Values.trainingConfig.jobName }}-nats\n",
    "training-config.yaml": "{{- $root := . }}\n{{/* one per service */}}\n{{- range $job := .Values.jobList }}\n"
    '{{- if ne $job.serviceType "nats-server" }}\n{{- $f := $root.Files.Get (printf "config/%s_hydra.yaml" '
    "$job.jobName) }}\n{{- if $f }}\n---\nkind: ConfigMap\nmetadata:\n  name: {{ $job.jobName }}-config\n"
    "data:\n  config.yaml: |-\n{{ $f | indent 4 }}\n{{- end }}\n{{- end }}\n{{- end }}\n",
    "redis.yaml": "{{- if .Values.trainingConfig.redis.enabled }}\nkind: Deployment\nmetadata:\n"
    "  name: {{ .Values.trainingConfig.jobName }}-redis\nspec:\n  image: {{ .Values.image.redis }}\n{{- end }}\n",
}
RFT_CONSTANTS = """\
from enum import Enum
RFT_REGION_ACCOUNT_MAP = {"us-east-1": "111122223333"}
class RFTJobType(Enum):
    TRAINING = "training"
    VLLM_GENERATION = "vllm-generation"
    HUB = "hub"
    NATS_BOOTSTRAP = "nats-bootstrap"
RFT_JOB_TASK_TYPE_DICT = {
    RFTJobType.TRAINING: "train", RFTJobType.VLLM_GENERATION: "gen", RFTJobType.HUB: "hub",
    RFTJobType.NATS_BOOTSTRAP: "boot",
}
RFT_PROMPT_RBS_TASK_TYPES = {"prompter": "prompt", "rbs": "score"}
RFT_GENERATION_CONTAINER_IMAGE = "{account_id}.dkr.ecr.{region}.amazonaws.com/r:GEN"
RFT_STORM_CONTAINER_IMAGE = "{account_id}.dkr.ecr.{region}.amazonaws.com/r:STORM"
RFT_NATS_SERVER_CONTAINER_IMAGE = "{account_id}.dkr.ecr.{region}.amazonaws.com/r:NATS"
RFT_NATS_RELOADER_CONTAINER_IMAGE = "{account_id}.dkr.ecr.{region}.amazonaws.com/r:RELOAD"
RFT_REDIS_CONTAINER_IMAGE = "{account_id}.dkr.ecr.{region}.amazonaws.com/r:REDIS"
"""


def _write_rft_chart(root: Path) -> None:
    """A small RFT chart in the hub's layout (written for the test), with the constructs the real one uses."""
    _write(root, hyperpod_derive.RFT_VALUES_FILE, RFT_VALUES)
    _write(root, hyperpod_derive.RFT_CONSTANTS_FILE, RFT_CONSTANTS)
    for name, text in RFT_TEMPLATES.items():
        _write(root, f"{hyperpod_derive.RFT_CHART_DIR}/templates/{name}", text)


def test_the_rft_chart_becomes_every_object_with_counts_typed_as_the_chart_prints_them(tmp_path: Path) -> None:
    rft = derive_tables(open_checkout(_synthetic_checkout(tmp_path / "hub")))["hyperpod.json"]["rft"]
    standard = rft["templates"]["standard"]
    assert [(o["kind"], o["metadata"]["name"]) for o in standard] == [
        ("Secret", "{{name}}-nats"),
        *[("ConfigMap", f"{{{{name}}}}-{s}-config") for s in hyperpod_derive.RFT_SERVICES],
        ("Deployment", "{{name}}-hubcli"),
        ("StatefulSet", "{{name}}-vllm"),
        ("Job", "{{name}}-rbs"),
        ("PyTorchJob", "{{name}}"),
    ]
    hub = standard[7]
    labels = {"app.kubernetes.io/managed-by": "novaflow", "novaflow.io/spec-hash": "{{spec_hash}}"}
    assert hub["metadata"]["labels"] == labels  # ``with`` over the custom labels
    assert (hub["metadata"]["annotations"]["worker_replicas"], hub["spec"]["replicas"]) == (
        "{{rollout_worker_replicas:str}}",  # quoted in the chart: stays text when filled
        "{{rollout_worker_replicas}}",
    )
    assert standard[8]["spec"] == {"replicas": "{{generation_replicas}}", "image": "{{rft_generation_image}}"}
    assert standard[1]["data"] == {"config.yaml": "{{recipe_training}}"}
    assert standard[-1]["spec"] == {"workers": "{{worker_replicas}}", "efa": "{{efa_devices}}", "account": None}
    delegate = rft["templates"]["delegate"]
    assert [o for o in delegate if o not in standard] == [
        {"kind": "Deployment", "metadata": {"name": "{{name}}-redis"}, "spec": {"image": "{{rft_redis_image}}"}}
    ]
    assert rft["task_types"] == {
        "training": "train",
        "vllm-generation": "gen",
        "hub": "hub",
        "nats-bootstrap": "boot",
        "prompter": "prompt",
        "rbs": "score",
    }
    assert rft["service_images"]["us-east-1"]["rft_storm_image"] == (
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/r:STORM"
    )
    assert rft["chart_replicas"] == {"generation_replicas": 3, "rollout_worker_replicas": 1}


def test_the_interpreter_blanks_nil_as_helm_does_and_knows_with_else_ne_and_comments() -> None:
    source = "{{/* note */}}a={{ .Values.x }};{{ with .Values.m }}{{ .k }}{{ else }}none{{ end }};{{ ne 1 2 }}"
    assert render(source, {"Values": {"x": None, "m": {"k": "v"}}}) == "a=;v;true"
    assert render(source, {"Values": {"m": {}}}) == "a=;none;true"
    files = {"config/a.yaml": "A"}
    assert render('{{ .Files.Get "config/a.yaml" }}|{{ .Files.Get "b" }}', {}, file_text=files) == "A|"


def test_a_checkout_becomes_tables_stamped_with_their_source(tmp_path: Path) -> None:
    root = _synthetic_checkout(tmp_path / "hub")
    tables = derive_tables(open_checkout(root))
    recipes = tables["recipes.json"]["recipes"]
    assert sorted(recipes) == ["nova_lite_2_0_p5_48xl_gpu_rft_eval", "nova_lite_2_0_p5_gpu_lora_sft"]  # no PPO
    sft = recipes["nova_lite_2_0_p5_gpu_lora_sft"]
    assert sft["technique"] == "SFT" and sft["peft"] is True and sft["nova_version"] == 2
    assert sft["hub_model"] == "nova-textgeneration-lite-v2"
    assert sft["overrides"]["learning_rate"]["default"] == 2e-5
    assert sft["documented"] == {"run.replicas": {"enum": [4, 8]}}
    evaluation = recipes["nova_lite_2_0_p5_48xl_gpu_rft_eval"]
    assert (evaluation["templated"], evaluation["template"], evaluation["evaluation_task"]) == (False, None, "rft_eval")
    assert "overrides" not in evaluation
    images = tables["images.json"]
    assert images["training"]["nova_lite_2_0_p5_gpu_lora_sft"]["SMTJ"] == {
        "us-east-1": "111122223333.dkr.ecr.us-east-1.amazonaws.com/nova-fine-tune-repo:SM-TJ-SFT-V2-latest"
    }
    assert images["training"]["nova_lite_2_0_p5_gpu_lora_sft"]["serverless_regions"] == ["eu-west-1", "us-east-1"]
    assert images["inference"] == {"us-east-1": "inference-image"}
    assert tables["recipes.json"]["source"]["repo"] == "aws/sagemaker-hyperpod-recipes"
    loaded = parse_tables(tables["recipes.json"], tables["images.json"])
    assert loaded.recipe("nova_lite_2_0_p5_gpu_lora_sft").regions("SMTJ") == frozenset({"us-east-1"})
    hyperpod = tables["hyperpod.json"]
    labels = {"app.kubernetes.io/managed-by": "novaflow", "novaflow.io/spec-hash": "{{spec_hash}}"}
    master = {"image": "{{container_image}}", "gpus": "{{devices}}"}
    assert hyperpod["templates"]["training_single_node"]["job"] == {
        "kind": "PyTorchJob",
        "metadata": {"name": "{{name}}", "namespace": "{{namespace}}", "labels": labels},
        "spec": {"master": master},
    }
    assert hyperpod["templates"]["evaluation_multi_node"]["job"]["spec"] == {
        "master": {**master, "hostNetwork": True},
        "worker": {"replicas": "{{worker_replicas}}"},
    }
    assert hyperpod["templates"]["training_single_node"]["config_map"] == {
        "kind": "ConfigMap",
        "metadata": {"name": "cfg-{{name}}"},
        "data": {"config.yaml": "{{recipe}}"},
    }
    assert (hyperpod["efa_devices"], hyperpod["gpu_devices"]) == ({"p5.48xlarge": 32}, {"g5.12xlarge": 4})
    assert hyperpod["source"]["files"][0] == "launcher/nova/k8s_templates/SFT/training.yaml"


@pytest.mark.slow
def test_the_script_writes_then_checks_and_reports_stale_tables(tmp_path: Path) -> None:
    root = _synthetic_checkout(tmp_path / "hub")
    out = tmp_path / "tables"
    script = [sys.executable, str(ROOT / "scripts" / "derive_service_specs.py"), str(root), "--out", str(out)]
    assert subprocess.run(script, capture_output=True, text=True, check=False).returncode == 0
    assert subprocess.run([*script, "--check"], capture_output=True, text=True, check=False).returncode == 0
    (out / "images.json").write_text("{}\n", encoding="utf-8")
    stale = subprocess.run([*script, "--check"], capture_output=True, text=True, check=False)
    assert stale.returncode == 1 and "images.json differs" in stale.stdout
    missing = subprocess.run([*script[:2], str(tmp_path / "nowhere")], capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "is not a checkout of aws/sagemaker-hyperpod-recipes" in missing.stderr


def test_open_checkout_refuses_a_directory_that_is_not_the_repository(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a checkout"):
        open_checkout(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not MIRROR.exists(), reason="no local mirror of aws/sagemaker-hyperpod-recipes")
def test_packaged_tables_are_what_the_recorded_commit_gives() -> None:
    checkout = open_checkout(MIRROR)
    published = load_published()
    if checkout.commit != published.commit:
        pytest.skip(f"mirror is at {checkout.commit}, the tables at {published.commit}")
    packaged = ROOT / "novaflow" / "recipes" / "published"
    for name, content in derive_tables(checkout).items():
        assert (packaged / name).read_text(encoding="utf-8") == dump_table(content), name


@pytest.mark.slow  # reads the mirror through git
@pytest.mark.skipif(not MIRROR.exists(), reason="no local mirror of aws/sagemaker-hyperpod-recipes")
@pytest.mark.parametrize("job", ["nova-lite-sft", "nova-lite-eval"])
def test_the_chart_renders_as_helm_rendered_it_in_the_hubs_own_baselines(job: str) -> None:
    """The hub's tests keep helm's output for their values: the interpreter must print the same lines (after the
    launcher's own placeholder substitutions, which the baseline applied)."""
    checkout = open_checkout(MIRROR)
    base = f"tests/nova_k8s_workflow/k8s_baseline_artifacts/with_launch_json/{job}"
    values = yaml.safe_load(checkout.read(f"{base}/k8s_templates/values.yaml"))
    rendered = render(checkout.read(hyperpod_derive.JOB_TEMPLATE), {"Values": values})
    init_image = values["trainingConfig"]["initContainer"]["image"]
    for old, new in (
        (job, "{{name}}"),
        ("namespace: default", "namespace: {{namespace}}"),
        ("test_container", "{{container_image}}"),
        (init_image, "{{init_container_image}}"),
        ("PLACEHOLDER_INSTANCE_TYPE", "{{instance_type}}"),
        ("ml.p5.48xlarge", "{{instance_type}}"),
        ("replicas_placeholder", "{{replicas}}"),
    ):
        rendered = rendered.replace(old, new)
    helm = json.loads(checkout.read(f"{base}/launch.json"))["training.yaml"]
    assert rendered.strip("\n") == helm.split("\n", 2)[2].strip("\n")
