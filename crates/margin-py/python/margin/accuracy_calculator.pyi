from typing import Any, Optional, Sequence, Union

class AccuracyCalculator:
    k: Union[int, str, None]
    def __init__(
        self,
        include: Sequence[str] = ...,
        exclude: Sequence[str] = ...,
        avg_of_avgs: bool = ...,
        return_per_class: bool = ...,
        k: Union[int, str, None] = ...,
        label_comparison_fn: None = ...,
        device: Any = ...,
        knn_func: None = ...,
        kmeans_func: None = ...,
        seed: int = ...,
    ) -> None: ...
    def get_accuracy(
        self,
        query: Any,
        query_labels: Any,
        reference: Optional[Any] = ...,
        reference_labels: Optional[Any] = ...,
        ref_includes_query: bool = ...,
        include: Sequence[str] = ...,
        exclude: Sequence[str] = ...,
    ) -> dict: ...
    def get_curr_metrics(self) -> list: ...
    def requires_clustering(self) -> list: ...
    def requires_knn(self) -> list: ...
