//! What the runner needs from the image store, as a trait: resolve a
//! reference to an image (its config and its unpacked layer directories),
//! and hold an image while a container uses it so `kiln rmi` refuses to
//! delete it. The root package implements it over kiln-registry (pulling
//! missing images); tests use a fake.

use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference as the user wrote it (shown by `ps`).
    pub name: String,
    /// The image id: its config digest (`sha256:…`).
    pub id: String,
    pub config: ImageConfiguration,
    /// Unpacked layer directories, bottom layer first.
    pub layer_dirs: Vec<PathBuf>,
}

/// Errors of an [`ImageSource`], carried as a boxed cause so the runner
/// does not depend on a particular store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {reference}")]
    NotFound { reference: String },
    #[error("cannot get the image {reference}")]
    Store {
        reference: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The image store as the runner sees it.
pub trait ImageSource: Send + Sync {
    /// Finds (pulling if needed, when `pull` is true) and unpacks an image.
    fn resolve(&self, reference: &str, pull: bool) -> Result<ResolvedImage, ImageError>;

    /// Re-finds an image by id for a container that is started again
    /// (its layers may have been unpacked again since).
    fn by_id(&self, id: &str) -> Result<ResolvedImage, ImageError>;

    /// Records that `container_id` uses image `image_id`.
    fn hold(&self, image_id: &str, container_id: &str) -> Result<(), ImageError>;

    /// Drops that record (the container is removed).
    fn release(&self, image_id: &str, container_id: &str) -> Result<(), ImageError>;
}

#[cfg(test)]
pub(crate) mod fake {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Images by name, with holds recorded.
    #[derive(Default)]
    pub struct FakeImages {
        pub images: HashMap<String, ResolvedImage>,
        pub holds: Mutex<Vec<(String, String)>>,
    }

    impl FakeImages {
        pub fn with(image: ResolvedImage) -> FakeImages {
            let mut images = HashMap::new();
            images.insert(image.name.clone(), image);
            FakeImages {
                images,
                holds: Mutex::default(),
            }
        }
    }

    impl ImageSource for FakeImages {
        fn resolve(&self, reference: &str, _pull: bool) -> Result<ResolvedImage, ImageError> {
            self.images
                .get(reference)
                .cloned()
                .ok_or_else(|| ImageError::NotFound {
                    reference: reference.to_string(),
                })
        }

        fn by_id(&self, id: &str) -> Result<ResolvedImage, ImageError> {
            self.images
                .values()
                .find(|i| i.id == id)
                .cloned()
                .ok_or_else(|| ImageError::NotFound {
                    reference: id.to_string(),
                })
        }

        fn hold(&self, image_id: &str, container_id: &str) -> Result<(), ImageError> {
            self.holds
                .lock()
                .unwrap()
                .push((image_id.to_string(), container_id.to_string()));
            Ok(())
        }

        fn release(&self, image_id: &str, container_id: &str) -> Result<(), ImageError> {
            self.holds
                .lock()
                .unwrap()
                .retain(|h| h != &(image_id.to_string(), container_id.to_string()));
            Ok(())
        }
    }
}
