"""Failure clusters: a taxonomy of how failed attempts went wrong, with stable ids.

The text of each failed attempt is the judge's ``failure_summary`` (or, failing that, its
first wrong step's category and reason). Texts are embedded (any OpenAI-compatible
``/v1/embeddings`` endpoint; vectors cached), L2-normalised, and clustered with a chosen k:
agglomerative (average linkage on cosine distance, deterministic; the default) or k-means
(seeded). The model names each cluster from the summaries nearest its centre.

Stable ids: the taxonomy is a JSON file. A later run assigns each new attempt to the nearest
existing cluster (cosine similarity to its centroid) unless asked to re-cluster; re-clustering
keeps an old id for a new cluster whose centroid is close to an old one (similarity >= 0.9,
best matches first) and gives new ids (F01, F02, ...) to the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from agentsignals._features.record import AttemptRecord
from agentsignals._judge.engine import Judge, Usage
from agentsignals._judge.rubrics import SYSTEM_PROMPT, OutputField, Prompt

if TYPE_CHECKING:
    from agentsignals._judge.cache import JudgeCache
    from agentsignals._judge.client import ModelClient

__all__ = [
    "TAXONOMY_FORMAT",
    "ClusterResult",
    "Taxonomy",
    "cluster_failures",
    "failure_text",
    "read_taxonomy",
]

TAXONOMY_FORMAT: Final = "agentsignals.judge.taxonomy/1"
KEEP_ID_SIMILARITY: Final = 0.9
NAME_EXAMPLES: Final = 5


def _np() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "clustering needs numpy and scipy: pip install 'agentsignals[judge]'"
        ) from exc
    return numpy


def failure_text(record: AttemptRecord) -> str | None:
    """The text a failed attempt is clustered by, or None when the judge left none."""
    judge = record.judge or {}
    summary = (judge.get("failure_summary") or {}).get("summary")
    if summary is not None and summary.status == "ok" and isinstance(summary.value, str):
        return summary.value
    fws = judge.get("first_wrong_step") or {}
    category = fws.get("category")
    reason = fws.get("reason")
    parts = [
        str(f.value).replace("_", " ")
        for f in (category, reason)
        if f is not None and f.status == "ok" and f.value
    ]
    return ": ".join(parts) if parts else None


def is_failed(record: AttemptRecord) -> bool | None:
    v = record.verification
    if v.reward is not None:
        return v.reward < 1.0
    if v.patch_outcome_label is not None and v.patch_outcome_label != "unverifiable":
        return v.patch_outcome_label != "correct_patch"
    return None


@dataclass
class Cluster:
    id: str
    name: str
    description: str
    centroid: list[float]
    members: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "size": len(self.members),
            "members": self.members,
            "examples": self.examples,
            "centroid": [round(x, 6) for x in self.centroid],
        }


@dataclass
class Taxonomy:
    """The clusters, and how they were made."""

    clusters: list[Cluster]
    embed_model: str
    method: str
    k: int
    created: str = ""
    namer_model: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": TAXONOMY_FORMAT,
            "created": self.created,
            "embed_model": self.embed_model,
            "namer_model": self.namer_model,
            "method": self.method,
            "k": self.k,
            "clusters": [c.as_dict() for c in self.clusters],
        }


def read_taxonomy(path: str | os.PathLike[str]) -> Taxonomy:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != TAXONOMY_FORMAT:
        raise ValueError(f"{path}: not an agentsignals taxonomy ({TAXONOMY_FORMAT})")
    clusters = [
        Cluster(
            id=str(c["id"]),
            name=str(c.get("name", "")),
            description=str(c.get("description", "")),
            centroid=[float(x) for x in c["centroid"]],
            members=[str(m) for m in c.get("members", [])],
            examples=[str(e) for e in c.get("examples", [])],
        )
        for c in data.get("clusters", [])
    ]
    return Taxonomy(
        clusters=clusters,
        embed_model=str(data.get("embed_model", "")),
        method=str(data.get("method", "")),
        k=int(data.get("k", len(clusters))),
        created=str(data.get("created", "")),
        namer_model=data.get("namer_model"),
    )


@dataclass
class ClusterResult:
    records: list[AttemptRecord]
    taxonomy: Taxonomy
    assigned: int = 0
    skipped: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


def embed_texts(
    client: ModelClient, model: str, texts: Sequence[str], cache: JudgeCache | None
) -> list[list[float]]:
    """Embeddings, read from the cache where present."""
    keys = [hashlib.sha256(f"{model}\0{t}".encode()).hexdigest() for t in texts]
    out: list[list[float] | None] = [
        cache.get_embedding(k) if cache is not None else None for k in keys
    ]
    todo = [i for i, v in enumerate(out) if v is None]
    if todo:
        vectors = client.embed(model, [texts[i] for i in todo])
        for i, vector in zip(todo, vectors, strict=True):
            out[i] = vector
            if cache is not None:
                cache.put_embedding(keys[i], model, vector)
    return [v for v in out if v is not None]


def _normalise(vectors: Any) -> Any:
    np = _np()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def _labels(vectors: Any, k: int, method: str, seed: int) -> list[int]:
    np = _np()
    n = len(vectors)
    k = max(1, min(k, n))
    if n == 1 or k == 1:
        return [0] * n
    if method == "kmeans":
        from scipy.cluster.vq import kmeans2

        _, labels = kmeans2(vectors, k, minit="++", seed=seed)
        return [int(x) for x in labels]
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(vectors, method="average", metric="cosine")
    labels = fcluster(tree, t=k, criterion="maxclust")
    return [int(x) - 1 for x in np.asarray(labels)]


def _name_cluster(judge: Judge, texts: list[str], usage: Usage) -> tuple[str, str, str | None]:
    fields = (
        OutputField(name="name", type="string", max_length=80,
                    description="a short name for the failure mode these runs share"),
        OutputField(name="description", type="string", max_length=300,
                    description="one sentence describing it"),
    )  # fmt: skip
    body = "\n".join(
        [
            "# Name a failure mode",
            "Each line below summarises how one failed run of a coding agent went wrong. They "
            "were grouped because they are alike. Name what they have in common, as a failure "
            'mode (for example "loops between editing and failing the same test").',
            "",
            *(f"- {t}" for t in texts),
            "",
            "# Answer",
            "Reply with one JSON object with keys explanation, name and description.",
        ]
    )
    properties: dict[str, Any] = {"explanation": {"type": "string", "maxLength": 300}}
    for f in fields:
        properties[f.name] = f.json_schema()
    prompt = Prompt(
        messages=({"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": body}),
        schema={
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
        schema_name="cluster_name",
        fields=fields,
    )
    answer = judge.ask(prompt, "cluster_name@1", 0, usage)
    if answer.values is None:
        return "", "", answer.error
    return str(answer.values["name"]), str(answer.values["description"]), None


def cluster_failures(
    records: Sequence[AttemptRecord],
    *,
    client: ModelClient,
    embed_model: str,
    cache: JudgeCache | None = None,
    k: int | None = None,
    method: str = "agglomerative",
    taxonomy: Taxonomy | None = None,
    recluster: bool = False,
    namer: Judge | None = None,
    seed: int = 0,
    only_failed: bool = True,
    keep_similarity: float = KEEP_ID_SIMILARITY,
) -> ClusterResult:
    """Cluster (or assign to `taxonomy`) the failed attempts; records get `cluster_id` and
    `cluster_name`. Attempts with no judge text are listed in `skipped`, not guessed."""
    np = _np()
    if method not in ("agglomerative", "kmeans"):
        raise ValueError(f"unknown method {method!r}; use agglomerative or kmeans")
    usage = Usage()
    texts: list[str] = []
    ids: list[str] = []
    skipped: list[str] = []
    for record in records:
        if only_failed and is_failed(record) is not True:
            continue
        text = failure_text(record)
        if text is None:
            skipped.append(record.attempt_id)
            continue
        texts.append(text)
        ids.append(record.attempt_id)
    if not texts:
        empty = taxonomy or Taxonomy([], embed_model, method, 0)
        return ClusterResult(list(records), empty, 0, skipped, usage)
    vectors = _normalise(np.asarray(embed_texts(client, embed_model, texts, cache), dtype=float))
    assignment: dict[str, Cluster] = {}
    if taxonomy is not None and taxonomy.clusters and not recluster:
        if taxonomy.embed_model and taxonomy.embed_model != embed_model:
            raise ValueError(
                f"the taxonomy was embedded with {taxonomy.embed_model!r}, not {embed_model!r}: "
                "use the same embedder, or re-cluster"
            )
        centroids = _normalise(np.asarray([c.centroid for c in taxonomy.clusters], dtype=float))
        similarity = vectors @ centroids.T
        for i, attempt_id in enumerate(ids):
            best = int(np.argmax(similarity[i]))
            cluster = taxonomy.clusters[best]
            if attempt_id not in cluster.members:
                cluster.members.append(attempt_id)
            assignment[attempt_id] = cluster
        result_taxonomy = taxonomy
    else:
        chosen_k = k if k is not None else max(2, min(12, round((len(texts) / 2) ** 0.5)))
        labels = _labels(vectors, chosen_k, method, seed)
        groups: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            groups.setdefault(label, []).append(i)
        # Deterministic order: larger clusters first, then by their first member's id.
        ordered = sorted(groups.values(), key=lambda g: (-len(g), min(ids[i] for i in g)))
        old = list(taxonomy.clusters) if taxonomy is not None else []
        new_clusters: list[Cluster] = []
        for members in ordered:
            centroid = _normalise(vectors[members].mean(axis=0, keepdims=True))[0]
            new_clusters.append(
                Cluster(id="", name="", description="", centroid=[float(x) for x in centroid],
                        members=[ids[i] for i in members])
            )  # fmt: skip
        _keep_ids(new_clusters, old, keep_similarity)
        for cluster, members in zip(new_clusters, ordered, strict=True):
            centroid = np.asarray(cluster.centroid)
            nearest = sorted(members, key=lambda i: (-float(vectors[i] @ centroid), ids[i]))
            cluster.examples = [texts[i] for i in nearest[:NAME_EXAMPLES]]
            previous = next((c for c in old if c.id == cluster.id), None)
            if previous is not None and previous.name:
                cluster.name, cluster.description = previous.name, previous.description
            elif namer is not None:
                name, description, error = _name_cluster(namer, cluster.examples, usage)
                cluster.name = name or f"cluster {cluster.id} (unnamed: {error})"
                cluster.description = description
            else:
                cluster.name = f"cluster {cluster.id}"
            for attempt_id in cluster.members:
                assignment[attempt_id] = cluster
        result_taxonomy = Taxonomy(
            clusters=new_clusters,
            embed_model=embed_model,
            method=method,
            k=len(new_clusters),
            namer_model=namer.settings.model if namer is not None else None,
        )
    result_taxonomy.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = []
    for record in records:
        found = assignment.get(record.attempt_id)
        if found is None:
            out.append(record)
        else:
            out.append(
                msgspec.structs.replace(record, cluster_id=found.id, cluster_name=found.name)
            )
    return ClusterResult(out, result_taxonomy, len(assignment), skipped, usage)


def _keep_ids(new: list[Cluster], old: list[Cluster], threshold: float) -> None:
    """Old ids for new clusters whose centroid is close to an old one (best pairs first; the
    threshold depends on the embedder's spread of similarities); fresh ids (F01, ...) for the
    rest."""
    np = _np()
    taken: set[str] = set()
    if old and new:
        a = np.asarray([c.centroid for c in new], dtype=float)
        b = _normalise(np.asarray([c.centroid for c in old], dtype=float))
        similarity = _normalise(a) @ b.T
        pairs = sorted(
            ((float(similarity[i, j]), i, j) for i in range(len(new)) for j in range(len(old))),
            key=lambda p: (-p[0], p[1], p[2]),
        )
        used_new: set[int] = set()
        for score, i, j in pairs:
            if score < threshold:
                break
            if i in used_new or old[j].id in taken:
                continue
            new[i].id = old[j].id
            used_new.add(i)
            taken.add(old[j].id)
    existing = {c.id for c in old} | taken
    counter = 1
    for cluster in new:
        if cluster.id:
            continue
        while f"F{counter:02d}" in existing:
            counter += 1
        cluster.id = f"F{counter:02d}"
        existing.add(cluster.id)


def write_taxonomy(taxonomy: Taxonomy, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(taxonomy.as_dict(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(target)
