"""Results for people: CSV export and the HTML report."""
