//! The build graph: a petgraph DAG of vertices, each an operation with its
//! ordered inputs. Adding a vertex whose definition (operation plus inputs)
//! is already in the graph returns the existing one, so work shared by two
//! stages is done once.

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::cachekey::CacheKey;
use crate::op::Op;
use crate::progress::VertexId;

/// Where in the Dockerfile a vertex comes from: byte offset and length
/// (for code frames) and the 1-based line and column of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub offset: usize,
    pub len: usize,
    pub line: usize,
    pub col: usize,
}

/// One step of the build.
#[derive(Debug, Clone)]
pub struct Vertex {
    pub op: Op,
    /// Progress name (`[2/3] RUN make`).
    pub name: String,
    /// The instruction it comes from.
    pub location: Option<Location>,
    /// The id its progress events carry.
    pub id: VertexId,
    /// Inputs in the order the operation refers to them.
    pub inputs: Vec<NodeIndex>,
    /// The definition digest that dedupes vertices within one build.
    pub(crate) def: CacheKey,
}

/// The DAG. Edges point from an input to the vertex that reads it; the
/// weight is the input's position.
#[derive(Debug, Default)]
pub struct BuildGraph {
    graph: DiGraph<Vertex, usize>,
    by_def: HashMap<CacheKey, NodeIndex>,
}

impl BuildGraph {
    pub fn new() -> BuildGraph {
        BuildGraph::default()
    }

    /// Adds a vertex (or returns the identical one already there).
    pub fn add(
        &mut self,
        op: Op,
        inputs: Vec<NodeIndex>,
        name: String,
        location: Option<Location>,
        id: VertexId,
    ) -> NodeIndex {
        let input_defs: Vec<CacheKey> = inputs.iter().map(|i| self.graph[*i].def).collect();
        // The definition digest: the operation keyed over its inputs'
        // definitions (content checksums are not known yet and not needed:
        // equal definitions read equal content within one build).
        let def = op.cache_key(&input_defs, &[]);
        if let Some(existing) = self.by_def.get(&def) {
            return *existing;
        }
        let node = self.graph.add_node(Vertex {
            op,
            name,
            location,
            id,
            inputs: inputs.clone(),
            def,
        });
        for (pos, input) in inputs.iter().enumerate() {
            self.graph.add_edge(*input, node, pos);
        }
        self.by_def.insert(def, node);
        node
    }

    pub fn vertex(&self, n: NodeIndex) -> &Vertex {
        &self.graph[n]
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Every vertex `target` depends on, itself included, inputs first.
    pub fn ancestors(&self, target: NodeIndex) -> Vec<NodeIndex> {
        let mut seen = vec![false; self.graph.node_count()];
        let mut order = Vec::new();
        let mut stack = vec![(target, false)];
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                order.push(n);
                continue;
            }
            if seen[n.index()] {
                continue;
            }
            seen[n.index()] = true;
            stack.push((n, true));
            for e in self.graph.edges_directed(n, Direction::Incoming) {
                if !seen[e.source().index()] {
                    stack.push((e.source(), false));
                }
            }
        }
        order
    }

    pub fn node_indices(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.node_indices()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Progress;
    use crate::worker::{ExecSpec, NetworkMode, Security};

    pub(crate) fn run_op(cmd: &str) -> Op {
        Op::Exec {
            root: Some(0),
            spec: ExecSpec {
                args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
                env: vec![],
                cwd: "/".into(),
                user: String::new(),
                network: NetworkMode::Default,
                security: Security::Sandbox,
                mounts: vec![],
                secret_env: vec![],
            },
            proxy_env: vec![],
        }
    }

    fn scratch_file() -> Op {
        Op::File {
            root: None,
            actions: vec![],
        }
    }

    #[test]
    fn identical_vertices_are_shared() {
        let p = Progress::null();
        let mut g = BuildGraph::new();
        let base = g.add(scratch_file(), vec![], "base".into(), None, p.vertex());
        let a = g.add(
            run_op("make"),
            vec![base],
            "[a 2/2] RUN make".into(),
            None,
            p.vertex(),
        );
        let b = g.add(
            run_op("make"),
            vec![base],
            "[b 2/2] RUN make".into(),
            None,
            p.vertex(),
        );
        assert_eq!(a, b);
        assert_eq!(g.len(), 2);
        let c = g.add(run_op("test"), vec![a], "RUN test".into(), None, p.vertex());
        assert_ne!(a, c);
        assert_eq!(g.ancestors(c), vec![base, a, c]);
        assert_eq!(g.ancestors(base), vec![base]);
    }
}
