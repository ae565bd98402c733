//! Runs one input through everything the front end offers: the syntax
//! layer and its dump, the typed layer, the global and stage scopes, and
//! every expansion the solver would do. Shared by the proptest properties
//! and the cargo-fuzz target, which only check that nothing panics.

use kiln_parser::{
    BuildArgs, DockerIgnore, Dockerfile, Instruction, PlatformArgs, Source, SyntaxTree,
};

/// Parses, types and expands `src`, ignoring errors.
pub fn exercise(src: &str) {
    if let Ok(tree) = SyntaxTree::parse(src) {
        let _ = tree.dump();
    }
    let Ok(df) = Dockerfile::parse(src) else {
        return;
    };
    let mut args = BuildArgs::new();
    args.insert("A".into(), "a b".into());
    let Ok(global) = df.global_scope(&args, &PlatformArgs::host()) else {
        return;
    };
    for stage in &df.stages {
        let _ = global.expand(&stage.base);
        let _ = df.stage_index(&stage.base);
        let mut scope = global.stage(Vec::new());
        for step in &stage.instructions {
            match &step.instruction {
                Instruction::Run(run) => {
                    for m in &run.mounts {
                        let _ = m.resolve(&scope);
                    }
                    let _ = scope.run_env();
                }
                Instruction::Copy(c) => {
                    for s in &c.spec.sources {
                        match s {
                            Source::Path(p) => drop(scope.expand(p)),
                            Source::Heredoc(h) => drop(scope.expand_heredoc(&h.body())),
                        }
                    }
                    let _ = scope.expand(&c.spec.dest);
                    let _ = DockerIgnore::from_patterns(&c.spec.exclude);
                }
                Instruction::Expose(ports) => {
                    for p in ports {
                        if let Ok(words) = scope.expand_words(p) {
                            for w in &words.value {
                                let _ = kiln_parser::ExposedPort::parse(w);
                            }
                        }
                    }
                }
                Instruction::Workdir(w) | Instruction::User(w) | Instruction::StopSignal(w) => {
                    drop(scope.expand(w))
                }
                Instruction::Label(pairs) => {
                    pairs.iter().for_each(|p| drop(scope.expand(&p.value)))
                }
                _ => {}
            }
            let _ = scope.apply(&step.instruction);
        }
    }
}
