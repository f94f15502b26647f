//! Tests of the consensus engine: rules one by one, crash safety, and the simulator suites.

mod ahead;
mod engine;
mod gate;
mod simulation;
