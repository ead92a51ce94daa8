"""Findings of a dataset check: :class:`Issue` and :class:`Report`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

__all__ = [
    'ERROR',
    'ISSUE_KINDS',
    'WARNING',
    'Issue',
    'Report',
]

ERROR = 'error'
WARNING = 'warning'

# Issue kinds, with what each means (also printed by ``--help``).
ISSUE_KINDS = {
    'missing_image': 'a label or annotation refers to an image that does '
    'not exist (file or COCO "images" record)',
    'missing_label': 'an image has no label file',
    'missing_train_ids': 'an image has labelIds/polygons but no '
    '*_labelTrainIds.png (generate them with the converter)',
    'no_samples': 'the folder holds no image of the expected layout',
    'unreadable_image': 'an image is empty, truncated, corrupt or not an '
    'image',
    'unreadable_label': 'a label file (PNG or polygon json) cannot be decoded',
    'unreadable_annotation': 'an annotation file is not valid json or not '
    'of the expected structure',
    'bad_label_format': 'a label map is not a single-channel map',
    'invalid_label_id': 'a label map holds values outside the valid set',
    'size_mismatch': 'an image and its label (or its recorded size) '
    'differ in size',
    'missing_field': 'an annotation lacks a required field',
    'bad_keypoints': 'a keypoint array has the wrong length or shape',
    'bad_value': 'a field holds a non-numeric, NaN/inf or out-of-range value',
    'bad_bbox': 'a bounding box is not [x, y, w, h] with w, h >= 0',
    'duplicate_id': 'an id is used twice',
}


@dataclass(frozen=True)
class Issue:
    """One finding of a dataset check.

    Args:
        kind (str): One of :data:`ISSUE_KINDS`.
        path (str): The offending file (for an annotation problem: the
            annotation file).
        message (str): Human-readable description; it names ``path`` and,
            where there is one, the field and what was expected.
        field (str, optional): The offending field (json key, or e.g.
            ``'annotation id 42: keypoints'``). Defaults to None.
        severity (str): ``'error'`` (the sample cannot be used as is) or
            ``'warning'``. Defaults to ``'error'``.
    """

    kind: str
    path: str
    message: str
    field: str | None = None
    severity: str = ERROR

    def __post_init__(self) -> None:
        if self.kind not in ISSUE_KINDS:
            raise ValueError(
                f'unknown issue kind {self.kind!r}; valid kinds are '
                f'{sorted(ISSUE_KINDS)}'
            )
        if self.severity not in (ERROR, WARNING):
            raise ValueError(
                f'severity must be {ERROR!r} or {WARNING!r}, got '
                f'{self.severity!r}'
            )

    def __str__(self) -> str:
        return f'[{self.severity}] {self.kind}: {self.message}'

    def to_dict(self) -> dict:
        """Return the issue as a json-serialisable dict."""
        return asdict(self)


@dataclass
class Report:
    """All findings of one dataset check.

    Args:
        dataset_type (str): ``'cityscapes'``, ``'coco'`` or ``'mpii'``.
        root (str): The checked folder.
        split (str, optional): The checked split, if any.
        issues (list[Issue]): The findings, in the order found.
        num_checked (int): Number of files (images, label maps, annotation
            files) that were checked.
    """

    dataset_type: str
    root: str
    split: str | None = None
    issues: list[Issue] = field(default_factory=list)
    num_checked: int = 0

    def add(self, issues: Iterable[Issue]) -> None:
        """Append ``issues`` to the report."""
        self.issues.extend(issues)

    @property
    def errors(self) -> list[Issue]:
        """The findings of severity ``'error'``."""
        return [i for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        """The findings of severity ``'warning'``."""
        return [i for i in self.issues if i.severity == WARNING]

    @property
    def ok(self) -> bool:
        """Whether no error was found (warnings are allowed)."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        """Number of findings per issue kind, most frequent first."""
        return dict(Counter(i.kind for i in self.issues).most_common())

    def summary(self, max_listed: int = 20) -> str:
        """Human-readable summary: totals, counts per kind, first findings.

        Args:
            max_listed (int): How many findings to list (errors first).

        Returns:
            str: The summary (several lines).
        """
        split = f' (split {self.split})' if self.split else ''
        lines = [
            f'{self.dataset_type} dataset {self.root}{split}: '
            f'{self.num_checked} files checked, {len(self.errors)} errors, '
            f'{len(self.warnings)} warnings'
        ]
        for kind, count in self.counts().items():
            lines.append(f'  {kind}: {count}')
        ordered = self.errors + self.warnings
        if ordered:
            shown = ordered[:max_listed]
            more = len(ordered) - len(shown)
            head = f'first {len(shown)} findings' if more else 'findings'
            lines.append(f'{head}:')
            lines.extend(f'  {issue}' for issue in shown)
            if more:
                lines.append(
                    f'  ... and {more} more (write them all with --out)'
                )
        return '\n'.join(lines)

    def to_dict(self) -> dict:
        """Return the report as a json-serialisable dict."""
        return {
            'dataset_type': self.dataset_type,
            'root': self.root,
            'split': self.split,
            'num_checked': self.num_checked,
            'num_errors': len(self.errors),
            'num_warnings': len(self.warnings),
            'counts': self.counts(),
            'issues': [i.to_dict() for i in self.issues],
        }

    def dump(self, path: str) -> None:
        """Write :meth:`to_dict` as json to ``path``."""
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(self.to_dict(), f, indent=2)
