"""Write the second benchmark space's data: a synthetic tabular classification task where capacity buys accuracy.

scikit-learn's ``make_classification`` (generated here, no download): 20,000 rows, 40 features (20 informative),
10 classes of 3 clusters each. Unlike digits, a narrow network cannot fit it, so the accuracy / energy front runs
from small to wide networks (see synthetic_ffnn.yaml). Deterministic (seed 0).

Usage: python benchmarks/specs/make_synthetic.py   # writes benchmarks/specs/synthetic_tabular.csv (~8 MB)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

OUT = Path(__file__).with_name("synthetic_tabular.csv")


def main() -> None:
    x, y = make_classification(
        n_samples=20_000,
        n_features=40,
        n_informative=20,
        n_redundant=10,
        n_classes=10,
        n_clusters_per_class=3,
        class_sep=1.5,
        random_state=0,
    )
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = y
    frame.to_csv(OUT, index=False, float_format="%.5f")
    print(f"wrote {OUT}: {len(frame)} rows, {x.shape[1]} features, {len(set(y))} classes")


if __name__ == "__main__":
    main()
