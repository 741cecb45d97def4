"""Write synthetic LiDAR sequences in the SemanticKITTI layout.

::

    out_dir/sequences/SS/velodyne/NNNNNN.bin   float32 (N, 4): x, y, z, intensity
    out_dir/sequences/SS/labels/NNNNNN.label   uint32 (N,): semantic raw id | instance id << 16
    out_dir/sequences/SS/poses.txt             one 3x4 row-major pose per scan (scan -> first scan)
    out_dir/sequences/SS/calib.txt             KITTI-style P0..P3 and Tr (Tr = identity: poses are LiDAR poses)
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from pcseg.atomic import atomic_write_bytes
from pcseg.errors import PcsegValueError
from pcseg.synth.lidar import get_sensor, scan_scene
from pcseg.synth.street import build_street

SCAN_PERIOD_S = 0.1  # 10 Hz spin, as KITTI

def sequence_seed(seed: int, sequence: str) -> np.random.SeedSequence:
    """The seed of one sequence: stable across runs and Python versions (no ``hash()``)."""
    return np.random.SeedSequence([int(seed), zlib.crc32(str(sequence).encode())])


def sequence_trajectory(rng: np.random.Generator, n_scans: int, lane_y: float):
    """Ego positions (n, 3) without height and yaws (n,) along the road, driving +x at 3-12 m/s."""
    speed = rng.uniform(3.0, 12.0)
    x = np.arange(n_scans) * speed * SCAN_PERIOD_S
    wobble_amp, wobble_len = rng.uniform(0.0, 0.4), rng.uniform(40.0, 120.0)
    phase = rng.uniform(0, 2 * np.pi)
    y = lane_y + wobble_amp * np.sin(2 * np.pi * x / wobble_len + phase)
    dy_dx = wobble_amp * 2 * np.pi / wobble_len * np.cos(2 * np.pi * x / wobble_len + phase)
    return np.stack([x, y, np.zeros_like(x)], axis=1), np.arctan(dy_dx)


def _pose_matrix(position, yaw) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    pose = np.eye(4)
    pose[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    pose[:3, 3] = position
    return pose


def _calib_text() -> str:
    # KITTI-like camera projections (only their shape matters to readers) and Tr = identity
    p = np.array([[718.856, 0, 607.1928, 0], [0, 718.856, 185.2157, 0], [0, 0, 1, 0]])
    lines = [f"P{i}: " + " ".join(f"{v:.12e}" for v in p.ravel()) for i in range(4)]
    lines.append("Tr: " + " ".join(f"{v:.12e}" for v in np.eye(4)[:3].ravel()))
    return "\n".join(lines) + "\n"


def check_dataset_args(out_dir, folders, folders_name: str, count, count_name: str) -> tuple[Path, list[str]]:
    """Validate a dataset writer's arguments: ``count`` >= 1 items per folder, ``folders`` plain
    non-empty folder names, ``out_dir`` not an existing file. Returns ``(Path(out_dir), folders as str)``."""
    if int(count) < 1:
        raise PcsegValueError(f"{count_name} must be >= 1, got {count}")
    folders = [str(f) for f in folders]
    if not folders or any(not f or "/" in f or f in (".", "..") for f in folders):
        raise PcsegValueError(f"{folders_name} must be non-empty folder names, got {folders!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PcsegValueError(f"out_dir {out} exists and is not a folder")
    return out, folders


def write_dataset(out_dir, sequences=("00",), scans_per_sequence: int = 10, seed: int = 0, sensor: str = "hdl64",
                  progress: bool = True) -> Path:
    """Generate ``scans_per_sequence`` consecutive scans per sequence and write them under ``out_dir``.

    Each sequence is its own street (drawn from ``seed`` and the sequence name) driven along by
    the ego car; consecutive scans see the same static scene from poses ``SCAN_PERIOD_S`` apart,
    with instance ids stable within the sequence. Same arguments -> byte-identical files.

    Args:
        out_dir: dataset root; ``sequences/SS/...`` is created under it.
        sequences: sequence names, e.g. ``("00", "01")``.
        scans_per_sequence: scans per sequence (>= 1).
        seed: master seed.
        sensor: ``hdl64``, ``vlp32`` or ``vlp16``.
        progress: show a tqdm progress bar.

    Returns the ``Path`` of ``out_dir``.
    """
    out, sequences = check_dataset_args(out_dir, sequences, "sequences", scans_per_sequence, "scans_per_sequence")
    model = get_sensor(sensor)
    total = len(sequences) * int(scans_per_sequence)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="scan", desc=f"synth {model.name}")
    try:
        for name in sequences:
            _write_sequence(out / "sequences" / name, name, int(scans_per_sequence), int(seed), model, bar)
    finally:
        if bar is not None:
            bar.close()
    info = {"generator": "pcseg.synth", "sensor": model.name, "seed": int(seed), "sequences": sequences,
            "scans_per_sequence": int(scans_per_sequence), "labels": "SemanticKITTI raw ids"}
    atomic_write_bytes(out / "synth_info.json", (json.dumps(info, indent=1) + "\n").encode())
    return out


def _write_sequence(seq_dir: Path, name: str, n_scans: int, seed: int, model, bar) -> None:
    seq_seed = sequence_seed(seed, name)
    layout_seed, traj_seed, scan_seeds = seq_seed.spawn(3)
    traj_rng = np.random.default_rng(traj_seed)
    height = traj_rng.uniform(1.6, 2.0)
    street_seed = int(layout_seed.generate_state(1)[0])
    # the road's width is fixed by the seed alone: plan the route on it, then build the scene
    # long enough for the route, with the ego lane kept clear
    _, layout = build_street(street_seed, x_min=-90.0, x_max=90.0)
    positions, yaws = sequence_trajectory(traj_rng, n_scans, layout.ego_lane_y)
    length = positions[-1, 0]
    scene, layout = build_street(street_seed, x_min=-90.0, x_max=length + 90.0, keep_clear=(-5.0, length + 5.0))
    positions[:, 2] = height
    (seq_dir / "velodyne").mkdir(parents=True, exist_ok=True)
    (seq_dir / "labels").mkdir(parents=True, exist_ok=True)
    first_inv = np.linalg.inv(_pose_matrix(positions[0], yaws[0]))
    pose_lines = []
    for index, scan_seed in enumerate(scan_seeds.spawn(n_scans)):
        rng = np.random.default_rng(scan_seed)
        xyz, intensity, labels, instance = scan_scene(scene, model, positions[index], yaws[index], rng)
        points = np.concatenate([xyz, intensity[:, None]], axis=1).astype("<f4")
        packed = (labels.astype(np.uint32) & 0xFFFF) | (instance.astype(np.uint32) << 16)
        atomic_write_bytes(seq_dir / "velodyne" / f"{index:06d}.bin", points.tobytes())
        atomic_write_bytes(seq_dir / "labels" / f"{index:06d}.label", packed.astype("<u4").tobytes())
        pose = first_inv @ _pose_matrix(positions[index], yaws[index])
        pose[np.abs(pose) < 1e-12] = 0.0  # no -1e-19 round-off noise in the text
        pose_lines.append(" ".join(f"{v:.12e}" for v in pose[:3].ravel()))
        if bar is not None:
            bar.update(1)
    atomic_write_bytes(seq_dir / "poses.txt", ("\n".join(pose_lines) + "\n").encode())
    atomic_write_bytes(seq_dir / "calib.txt", _calib_text().encode())
