"""City simulator, MDRP benchmark loader and simulator, replay driver and evaluation reports."""
