"""File formats of xbarlab, one module per job.

- :mod:`.provenance`: :class:`Provenance` (where a file came from), file hashes, the
  format version.
- :mod:`.output`: atomic writing (:func:`atomic_output`, :func:`write_text_atomic`) and
  xbarlab output folders with their manifest (:func:`prepare_output_dir`).
- :mod:`.hdf5`: HDF5 model files (device and noise models, trees of :class:`Quantity`)
  and HDF5 measurement tables; the only module that imports h5py.
- :mod:`.measurements`: :class:`Measurements`, :func:`read_measurements`,
  :func:`write_measurements`; the column roles in :mod:`.roles`, the readers of text
  tables in :mod:`.text_tables` and of HDF5/.npz tables in :mod:`.array_tables`.
- :mod:`.pulse_tables`: pulse-response data, :class:`PulseRamps` (conductance ramps under
  identical pulses, :func:`read_pulse_ramps`) and :class:`PulseStepTable` (step size per
  conductance bin, :func:`read_step_table`), their layout learned by :func:`pulse_layout`.
- :mod:`.report_doc`: reports as lists of blocks, rendered as Markdown and as HTML.
"""

from __future__ import annotations

from .hdf5 import (
    KNOWN_UNITS,
    MEASUREMENTS_FORMAT,
    Quantity,
    file_kind,
    read_model_file,
    write_model_file,
)
from .measurements import Measurements, read_measurements, write_measurements
from .output import (
    MANIFEST_NAME,
    TEMP_PATTERN,
    atomic_output,
    check_input_file,
    check_not_input,
    check_output_path,
    clean_stale_temporaries,
    prepare_output_dir,
    process_alive,
    write_text_atomic,
)
from .provenance import FORMAT_VERSION, Provenance, sha256_file
from .pulse_tables import (
    PulseLayout,
    PulseRamps,
    PulseStepTable,
    pulse_layout,
    read_pulse_ramps,
    read_step_table,
)
from .roles import ROLES, SI_UNITS, TableLayout, TimeOrigin

__all__ = [
    "Quantity",
    "Provenance",
    "FORMAT_VERSION",
    "KNOWN_UNITS",
    "MANIFEST_NAME",
    "MEASUREMENTS_FORMAT",
    "atomic_output",
    "check_input_file",
    "check_not_input",
    "check_output_path",
    "clean_stale_temporaries",
    "process_alive",
    "TEMP_PATTERN",
    "write_text_atomic",
    "prepare_output_dir",
    "sha256_file",
    "write_model_file",
    "read_model_file",
    "file_kind",
    "ROLES",
    "SI_UNITS",
    "TableLayout",
    "TimeOrigin",
    "Measurements",
    "read_measurements",
    "write_measurements",
    "PulseLayout",
    "PulseRamps",
    "PulseStepTable",
    "pulse_layout",
    "read_pulse_ramps",
    "read_step_table",
]
