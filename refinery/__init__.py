"""refinery: an Azure ML-centred MLOps lakehouse for process plants, runnable whole on one laptop."""
