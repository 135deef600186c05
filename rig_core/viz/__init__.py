"""Views of data for people: tables, GIFs."""
