"""Circuit-level crossbar simulation: exact solves of the resistive grid."""
