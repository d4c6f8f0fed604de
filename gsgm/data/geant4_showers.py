"""Optional: real Geant4 photon showers in the same ILD-like calorimeter, through geant4-pybind.

Not run on the project's machines: Geant4's physics lists need its data sets (G4EMLOW, G4ENSDFSTATE,
...), which no reachable package registry ships. :func:`check_geant4` says in one line what is missing
(the Python package, or a data set named by its environment variable) before anything is imported,
so that geant4-pybind never tries to download its data on import. Where both are present,
:func:`simulate_geant4_showers` builds the geometry of :class:`gsgm.data.gflash.CaloGeometry` (tungsten
absorbers, silicon sensors, a 30 x 30 cell readout per layer), shoots photons along +z at the centre
of the front face, sums the energy deposited in each sensor cell and keeps the cells above half a mip
-- the same point-cloud layout as the GFlash stand-in (:mod:`gsgm.data.calo_format`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gsgm.data.calo_format import CaloSample, pad_points
from gsgm.data.gflash import CaloGeometry, GFlashSettings, cells_above_threshold

__all__ = [
    "DATASET_VARIABLES",
    "Geant4Settings",
    "Geant4UnavailableError",
    "check_geant4",
    "simulate_geant4_showers",
]

#: Environment variables of the data sets an electromagnetic shower in a reference physics list reads.
DATASET_VARIABLES: tuple[str, ...] = ("G4LEDATA", "G4ENSDFSTATEDATA", "G4LEVELGAMMADATA", "G4PARTICLEXSDATA")
PHYSICS_LISTS: tuple[str, ...] = ("FTFP_BERT", "FTFP_BERT_EMZ", "QGSP_BERT", "QGSP_BERT_EMZ", "FTFP_BERT_EMY")


class Geant4UnavailableError(ValueError):
    """geant4-pybind or a Geant4 data set is missing (the message says which and what to do)."""


@dataclass(frozen=True)
class Geant4Settings:
    """What to simulate: number of showers, seed, incident energies [GeV] (uniform), physics list."""

    num_showers: int
    seed: int
    energy_min: float = 10.0
    energy_max: float = 90.0
    physics_list: str = "FTFP_BERT"
    threshold_mip: float = 0.5

    def __post_init__(self) -> None:
        if self.num_showers < 1:
            raise ValueError(f"--showers must be >= 1, got {self.num_showers}")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"--seed must be in [0, 2^31), got {self.seed}")
        if not 0 < self.energy_min <= self.energy_max:
            raise ValueError(
                f"need 0 < energy min <= energy max (GeV), got {self.energy_min}, {self.energy_max}"
            )
        if self.physics_list not in PHYSICS_LISTS:
            raise ValueError(
                f"--physics-list must be one of {', '.join(PHYSICS_LISTS)}, got {self.physics_list!r}"
            )


def check_geant4(environ: dict[str, str] | None = None) -> None:
    """Raise :class:`Geant4UnavailableError` unless geant4-pybind and its data sets are installed."""
    environ = os.environ if environ is None else environ
    if importlib.util.find_spec("geant4_pybind") is None:
        raise Geant4UnavailableError(
            "geant4-pybind is not installed (pip install geant4-pybind) and needs the Geant4 data sets; "
            "use --engine gflash for the parametrised stand-in"
        )
    missing = [v for v in DATASET_VARIABLES if not (environ.get(v) and Path(environ[v]).is_dir())]
    if missing:
        raise Geant4UnavailableError(
            f"Geant4 data sets not found: set {', '.join(missing)} to the installed data directories "
            "(G4EMLOW, G4ENSDFSTATE, PhotonEvaporation, G4PARTICLEXS); use --engine gflash without them"
        )


def simulate_geant4_showers(
    settings: Geant4Settings, command: str, geometry: CaloGeometry | None = None, progress: bool = True
) -> tuple[CaloSample, dict[str, object]]:
    """Simulate ``settings.num_showers`` photon showers with Geant4 (needs :func:`check_geant4`)."""
    check_geant4()
    geometry = geometry or CaloGeometry()
    import geant4_pybind as g4

    collector = _build(g4, geometry, settings)
    rng = np.random.default_rng(settings.seed)
    energies = rng.uniform(settings.energy_min, settings.energy_max, settings.num_showers)
    threshold = GFlashSettings(threshold_mip=settings.threshold_mip)
    clouds = []
    for i, energy in enumerate(energies):
        collector.gun.SetParticleEnergy(float(energy) * g4.GeV)
        collector.reset()
        collector.run_manager.BeamOn(1)
        x, y, layer, edep = collector.arrays()
        clouds.append(cells_above_threshold(x, y, layer, edep, geometry, threshold))
        if progress:
            print(f"\rgeant4: {i + 1}/{len(energies)} showers", end="", file=sys.stderr)
    points, counts = pad_points(clouds)
    attributes = {"generator": f"Geant4 via geant4-pybind ({settings.physics_list})", "command": command,
                  "settings": str(asdict(settings))}  # fmt: skip
    return CaloSample(energies.astype(np.float32), points, counts, geometry.to_dict()), attributes


def _build(g4, geometry: CaloGeometry, settings: Geant4Settings):  # pragma: no cover - needs Geant4 data
    """Geometry, physics, gun and a stepping action that records (x, y [mm], layer, edep [MeV]) in silicon."""
    nist = g4.G4NistManager.Instance()
    tungsten, silicon, air = (nist.FindOrBuildMaterial(n) for n in ("G4_W", "G4_Si", "G4_Galactic"))
    half_xy = 2.0 * geometry.half_width_mm * g4.mm
    depth = sum(geometry.absorber_mm) + geometry.num_layers * geometry.sensor_mm

    class Detector(g4.G4VUserDetectorConstruction):
        def Construct(self):
            box = g4.G4Box("world", 1.1 * half_xy, 1.1 * half_xy, depth * g4.mm)
            world = g4.G4LogicalVolume(box, air, "world")
            placed = g4.G4PVPlacement(None, g4.G4ThreeVector(), world, "world", None, False, 0)
            z = -0.5 * depth
            self.sensors = {}
            for layer, absorber_mm in enumerate(geometry.absorber_mm):
                for name, thickness, material in (
                    ("W", absorber_mm, tungsten),
                    ("Si", geometry.sensor_mm, silicon),
                ):
                    box = g4.G4Box(f"{name}{layer}", half_xy, half_xy, 0.5 * thickness * g4.mm)
                    logical = g4.G4LogicalVolume(box, material, f"{name}{layer}")
                    g4.G4PVPlacement(None, g4.G4ThreeVector(0, 0, (z + 0.5 * thickness) * g4.mm), logical,
                                     f"{name}{layer}", world, False, layer)  # fmt: skip
                    if name == "Si":
                        self.sensors[f"Si{layer}"] = layer
                    z += thickness
            return placed

    class Collector(g4.G4UserSteppingAction):
        def __init__(self, detector):
            super().__init__()
            self.detector, self.rows = detector, []

        def reset(self):
            self.rows = []

        def UserSteppingAction(self, step):
            edep = step.GetTotalEnergyDeposit()
            volume = step.GetPreStepPoint().GetTouchable().GetVolume()
            layer = self.detector.sensors.get(volume.GetName()) if volume is not None else None
            if edep > 0 and layer is not None:
                p = step.GetPostStepPoint().GetPosition()
                self.rows.append((p.x() / g4.mm, p.y() / g4.mm, layer, edep / g4.MeV))

        def arrays(self):
            rows = np.asarray(self.rows, np.float64).reshape(-1, 4)
            return rows[:, 0], rows[:, 1], rows[:, 2].astype(np.int64), rows[:, 3]

    class Gun(g4.G4VUserPrimaryGeneratorAction):
        def __init__(self):
            super().__init__()
            self.gun = g4.G4ParticleGun(1)
            self.gun.SetParticleDefinition(g4.G4Gamma.Definition())
            self.gun.SetParticleMomentumDirection(g4.G4ThreeVector(0, 0, 1))
            self.gun.SetParticlePosition(g4.G4ThreeVector(0, 0, -0.5 * depth * g4.mm))

        def GeneratePrimaries(self, event):
            self.gun.GeneratePrimaryVertex(event)

    g4.G4Random.setTheSeed(settings.seed)
    run_manager = g4.G4RunManagerFactory.CreateRunManager(g4.G4RunManagerType.Serial)
    detector, gun = Detector(), Gun()
    run_manager.SetUserInitialization(detector)
    run_manager.SetUserInitialization(g4.G4PhysListFactory().GetReferencePhysList(settings.physics_list))
    run_manager.SetUserAction(gun)
    run_manager.Initialize()
    collector = Collector(detector)
    run_manager.SetUserAction(collector)
    collector.gun, collector.run_manager = gun.gun, run_manager
    return collector
