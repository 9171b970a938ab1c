from __future__ import annotations

import pytest

from exporter.extract.paginators import page_info, remaining_pages
from exporter.errors import ApiError


@pytest.mark.parametrize(
    "pagination, pages",
    [
        ({"page": 1, "page_size": 20, "total": 150}, list(range(2, 9))),
        ({"page": 1, "page_size": 50, "total": 150}, [2, 3]),  # asked 100, the server served 50
        ({"page": 1, "page_size": 100, "total": 100}, []),
        ({"page": 1, "page_size": 100, "total": 0}, []),
    ],
)
def test_remaining_pages_follow_the_server(pagination, pages):
    info = page_info({"items": [], "pagination": pagination})
    assert list(remaining_pages(info.page_count, 100)) == pages


@pytest.mark.parametrize("data", [{}, {"pagination": {"page": 1}}, {"pagination": {"page": 1, "page_size": 0, "total": 5}}])
def test_bad_pagination_is_an_api_error(data):
    with pytest.raises(ApiError):
        page_info(data)
